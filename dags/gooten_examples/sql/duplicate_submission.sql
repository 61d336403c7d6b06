-- Rule duplicate_submission -> Cancel the later order: the same customer submitted the same items
-- (same SKUs and quantities) twice within params.duplicate_window_minutes. The earlier order is kept.
-- Returns (order_id, reason) for each later order of the batch.
-- seconds_between() is the one dialect-specific expression: see gooten_examples/rules.py.
SELECT
    later.order_id,
    'same customer and items as order ' || earlier.order_id || ', submitted within '
        || CAST({{ params.duplicate_window_minutes | int }} AS VARCHAR(10)) || ' minutes' AS reason
FROM orders AS later
JOIN orders AS earlier
    ON earlier.customer_id = later.customer_id
   AND earlier.order_id <> later.order_id
   AND (
       earlier.created_at < later.created_at
       OR (earlier.created_at = later.created_at AND earlier.order_id < later.order_id)
   )
WHERE later.loaded_at >= '{{ batch_start(dag_run.run_after, params.batch_hours) }}'
  AND {{ seconds_between('earlier.created_at', 'later.created_at') }}
      <= {{ (params.duplicate_window_minutes | int) * 60 }}
  AND EXISTS (SELECT 1 FROM order_items AS li WHERE li.order_id = later.order_id)
  AND NOT EXISTS (
      SELECT 1 FROM order_items AS li
      WHERE li.order_id = later.order_id
        AND NOT EXISTS (
            SELECT 1 FROM order_items AS ei
            WHERE ei.order_id = earlier.order_id AND ei.sku = li.sku AND ei.quantity = li.quantity
        )
  )
  AND NOT EXISTS (
      SELECT 1 FROM order_items AS ei
      WHERE ei.order_id = earlier.order_id
        AND NOT EXISTS (
            SELECT 1 FROM order_items AS li
            WHERE li.order_id = later.order_id AND li.sku = ei.sku AND li.quantity = ei.quantity
        )
  )
ORDER BY later.order_id, reason
