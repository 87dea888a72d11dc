-- +goose Up

-- The rule of which sale is open, stated once: the latest sale started, if
-- it has not ended. Checkouts and the reads select from this view; being a
-- plain view, PostgreSQL inlines it, so each query's plan is what it was
-- with the rule written out.
CREATE VIEW current_sale AS
SELECT latest.*
FROM (SELECT * FROM sales WHERE starts_at <= now() ORDER BY starts_at DESC LIMIT 1) AS latest
WHERE latest.ends_at > now();

-- +goose Down
DROP VIEW current_sale;
