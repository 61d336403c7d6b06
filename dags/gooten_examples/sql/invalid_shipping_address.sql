-- Rule invalid_shipping_address -> Hold: the order's shipping address is missing or incomplete.
-- Returns one row per failing order of the batch: (order_id, reason).
SELECT order_id, reason
FROM (
    SELECT
        o.order_id,
        CASE
            WHEN a.order_id IS NULL THEN 'no shipping address'
            WHEN COALESCE(TRIM(a.recipient_name), '') = '' THEN 'recipient name is missing'
            WHEN COALESCE(TRIM(a.line1), '') = '' THEN 'street address is missing'
            WHEN COALESCE(TRIM(a.city), '') = '' THEN 'city is missing'
            WHEN COALESCE(TRIM(a.postal_code), '') = '' THEN 'postal code is missing'
            WHEN LENGTH(COALESCE(TRIM(a.country_code), '')) <> 2 THEN 'country code is not a 2-letter ISO code'
            WHEN UPPER(a.country_code) IN ('US', 'CA') AND COALESCE(TRIM(a.region), '') = ''
                THEN 'state or province is missing'
            WHEN UPPER(a.country_code) = 'US' AND LENGTH(TRIM(a.postal_code)) NOT IN (5, 10)
                THEN 'US ZIP code is neither 5 digits nor ZIP+4'
        END AS reason
    FROM orders AS o
    LEFT JOIN shipping_addresses AS a ON a.order_id = o.order_id
    WHERE o.loaded_at >= '{{ batch_start(dag_run.run_after, params.batch_hours) }}'
) AS checked
WHERE reason IS NOT NULL
ORDER BY order_id
