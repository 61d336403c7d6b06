-- Rule price_mismatch -> Hold: the items' quantity x unit price do not add up to the order total
-- (an order without items adds up to 0). Returns (order_id, reason) per failing order of the batch.
SELECT
    o.order_id,
    'items add up to ' || CAST(ROUND(COALESCE(s.items_total, 0), 2) AS VARCHAR(20))
        || ' but the order total is ' || CAST(ROUND(o.total, 2) AS VARCHAR(20)) AS reason
FROM orders AS o
LEFT JOIN (
    SELECT order_id, SUM(quantity * unit_price) AS items_total
    FROM order_items
    GROUP BY order_id
) AS s ON s.order_id = o.order_id
WHERE o.loaded_at >= '{{ batch_start(dag_run.run_after, params.batch_hours) }}'
  AND ABS(o.total - COALESCE(s.items_total, 0)) > 0.005
ORDER BY o.order_id
