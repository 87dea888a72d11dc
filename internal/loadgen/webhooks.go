package loadgen

import (
	"context"
	"fmt"
	"time"

	"github.com/flashsale/flashsale/internal/loadgen/invariant"
	"github.com/flashsale/flashsale/internal/loadgen/report"
)

// webhookPoll is how often the wait for missing purchase events looks.
const webhookPoll = 50 * time.Millisecond

// awaitWebhooks waits, opts.WebhookWait at most, until sd's webhook
// receiver holds a purchase.completed event for every purchase of sale
// saleID, then holds what it got against the database.
func awaitWebhooks(ctx context.Context, opts Options, sd side, saleID int64, herdEnd time.Time) (*report.WebhookReport, error) {
	// The sale is sold out: its purchases are all in by now.
	db, err := invariant.PurchaseSales(ctx, sd.pool)
	if err != nil {
		return nil, fmt.Errorf("%s webhooks: %w", sd.name, err)
	}
	var want []int64
	for id, sale := range db {
		if sale == saleID {
			want = append(want, id)
		}
	}
	rcv := sd.webhooks
	start := time.Now()
	timedOut := false
	if missing := rcv.Missing(want); missing > 0 {
		fmt.Fprintf(opts.Log, "loadgen: %s webhooks: waiting up to %s for %d of %d purchase events\n",
			sd.name, opts.WebhookWait, missing, len(want))
		deadline := time.NewTimer(opts.WebhookWait)
		defer deadline.Stop()
		tick := time.NewTicker(webhookPoll)
		defer tick.Stop()
	wait:
		for rcv.Missing(want) > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-deadline.C:
				timedOut = true
				break wait
			case <-tick.C:
			}
		}
	}
	waited := time.Since(start)
	st := rcv.Stats()
	wh := &report.WebhookReport{
		Deliveries: invariant.CompareDeliveries(saleID, db, st),
		Requests:   st.Requests, Accepted: st.Deliveries, Distinct: st.Distinct, Duplicates: st.Duplicates,
		ByType: st.ByType, WaitS: waited.Seconds(), TimedOut: timedOut,
	}
	if !st.LastPurchase.IsZero() {
		d := st.LastPurchase.Sub(herdEnd).Seconds()
		wh.DrainS = &d
	}
	fmt.Fprintf(opts.Log, "loadgen: %s webhooks: %d of %d purchase events after waiting %.2fs, %d distinct events, %d duplicates, %d bad signatures\n",
		sd.name, wh.PurchasesInDB-wh.Missing, wh.PurchasesInDB, waited.Seconds(), wh.Distinct, wh.Duplicates, wh.BadSignatures)
	return wh, nil
}
