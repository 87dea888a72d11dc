-- +goose Up
-- Until migration 00003 this file created checkout_batch() and
-- purchase_batch(), plpgsql functions that held the rules of checkout and
-- purchase. Those rules are now named sqlc queries in queries/, sent by
-- internal/sale as one transaction per batch; 00003 drops the functions
-- from databases that had them. Fresh databases never create them.
SELECT 1;

-- +goose Down
SELECT 1;
