-- Rule bad_image_url -> Hold: an item has no print image, or its image URL is not https://.
-- Returns one row per failing item of the batch: (order_id, reason).
SELECT DISTINCT
    o.order_id,
    CASE
        WHEN COALESCE(TRIM(i.image_url), '') = ''
            THEN 'item ' || CAST(i.line_number AS VARCHAR(10)) || ' has no image URL'
        ELSE 'item ' || CAST(i.line_number AS VARCHAR(10)) || ' image URL is not https'
    END AS reason
FROM orders AS o
JOIN order_items AS i ON i.order_id = o.order_id
WHERE o.loaded_at >= '{{ batch_start(dag_run.run_after, params.batch_hours) }}'
  AND (
      COALESCE(TRIM(i.image_url), '') = ''
      OR LOWER(TRIM(i.image_url)) NOT LIKE 'https://%'
  )
ORDER BY o.order_id, reason
