-- Rule flagged_test_or_fraud -> Cancel: the shop flagged the order as a test order or as suspected fraud.
-- Returns (order_id, reason) per flagged order of the batch.
SELECT
    order_id,
    CASE
        WHEN flagged_fraud = TRUE AND flagged_test = TRUE THEN 'flagged as suspected fraud and as a test order'
        WHEN flagged_fraud = TRUE THEN 'flagged as suspected fraud'
        ELSE 'flagged as a test order'
    END AS reason
FROM orders
WHERE loaded_at >= '{{ batch_start(dag_run.run_after, params.batch_hours) }}'
  AND (flagged_test = TRUE OR flagged_fraud = TRUE)
ORDER BY order_id
