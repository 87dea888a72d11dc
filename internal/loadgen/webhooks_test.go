package loadgen

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/database"
	"github.com/flashsale/flashsale/internal/loadgen/deploy"
	"github.com/flashsale/flashsale/internal/loadgen/report"
	"github.com/flashsale/flashsale/internal/loadgen/webhook"
	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
)

// sender stands in for the servers' webhook delivery, so that these tests
// check loadgen's side on its own: it POSTs a signed purchase.completed
// event for every new purchase row, as the contract shapes it.
type sender struct {
	url, secret string
	// lose drops the first purchase's event, forges one delivery and
	// invents a purchase: what the check must catch.
	lose   bool
	nextID int64
}

func (s *sender) post(ctx context.Context, typ string, saleID, purchaseID int64, secret string) (int, error) {
	s.nextID++
	data := "{}"
	if typ == webhook.PurchaseEvent {
		data = fmt.Sprintf(`{"purchase":{"id":%d,"user_id":"u","code":"c","item":1}}`, purchaseID)
	}
	body := fmt.Sprintf(`{"id":%d,"type":%q,"sale_id":%d,"sequence":%d,"created_at":%q,"data":%s}`,
		s.nextID, typ, saleID, s.nextID, time.Now().UTC().Format(time.RFC3339), data)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + body))
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderEventID, strconv.FormatInt(s.nextID, 10))
	req.Header.Set(webhook.HeaderEventType, typ)
	req.Header.Set(webhook.HeaderSignature, "t="+ts+",v1="+hex.EncodeToString(mac.Sum(nil)))
	// Sent twice, as a retry after a lost answer would: the receiver
	// counts the event once.
	code := 0
	for range 2 {
		resp, err := http.DefaultClient.Do(req.Clone(ctx))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		code = resp.StatusCode
		req.Body, _ = req.GetBody()
	}
	return code, nil
}

// run polls the database's purchases until ctx ends.
func (s *sender) run(ctx context.Context, dbURL string) error {
	pool, err := database.Open(ctx, dbURL, 1, 10*time.Second)
	if err != nil {
		return err
	}
	defer pool.Close()
	// Not "WHERE id > the last one sent": ids are drawn before commit, so
	// a lower id may commit after a higher one was read.
	sent := make(map[int64]bool)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for first := true; ; first = false {
		rows, err := pool.Query(ctx, "SELECT id, sale_id FROM purchases ORDER BY id")
		if err != nil {
			return ignoreDone(ctx, err)
		}
		var ids, sales []int64
		for rows.Next() {
			var id, sale int64
			if err := rows.Scan(&id, &sale); err != nil {
				return err
			}
			if !sent[id] {
				sent[id] = true
				ids, sales = append(ids, id), append(sales, sale)
			}
		}
		if err := rows.Err(); err != nil {
			return ignoreDone(ctx, err)
		}
		if first {
			if code, err := s.post(ctx, "sale.started", 0, 0, s.secret); err != nil || code != http.StatusNoContent {
				return ignoreDone(ctx, fmt.Errorf("sale.started: %d %v", code, err))
			}
		}
		for i, id := range ids {
			if s.lose {
				s.lose = false
				if code, err := s.post(ctx, webhook.PurchaseEvent, sales[i], id, "forged-secret-forged-secret"); err != nil || code != http.StatusUnauthorized {
					return ignoreDone(ctx, fmt.Errorf("forged event answered %d %v", code, err))
				}
				if code, err := s.post(ctx, webhook.PurchaseEvent, sales[i], 1<<40, s.secret); err != nil || code != http.StatusNoContent {
					return ignoreDone(ctx, fmt.Errorf("invented purchase answered %d %v", code, err))
				}
				continue
			}
			if code, err := s.post(ctx, webhook.PurchaseEvent, sales[i], id, s.secret); err != nil || code != http.StatusNoContent {
				return ignoreDone(ctx, fmt.Errorf("purchase %d: answered %d %v", id, code, err))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ignoreDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// TestServiceWebhooks runs the service side with a webhook receiver fed by
// the stand-in sender: with every event delivered the check PASSes and the
// figures add up; with one lost, one forged and one invented it FAILs and
// says which, after waiting WebhookWait, while every other invariant
// still PASSes.
func TestServiceWebhooks(t *testing.T) {
	t.Parallel()
	for _, lose := range []bool{false, true} {
		t.Run(fmt.Sprintf("lose=%v", lose), func(t *testing.T) {
			t.Parallel()
			srv := apitest.Start(t, apitest.Options{Settings: smokeSettings()})
			secret, err := webhook.NewSecret()
			if err != nil {
				t.Fatal(err)
			}
			rcv, err := webhook.Start(secret)
			if err != nil {
				t.Fatal(err)
			}
			defer rcv.Close(context.Background())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			snd := &sender{url: rcv.URL(), secret: secret, lose: lose}
			sent := make(chan error, 1)
			go func() { sent <- snd.run(ctx, srv.DBURL) }()

			opts := smokeOptions(t)
			opts.Baseline = false
			if lose {
				opts.WebhookWait = 500 * time.Millisecond
			}
			svc, err := RunService(ctx, opts, Target{URLs: []string{srv.URL}, DBURL: srv.DBURL, Webhooks: rcv})
			cancel()
			if serr := <-sent; serr != nil {
				t.Fatalf("sender: %v", serr)
			}
			if err != nil {
				t.Fatal(err)
			}
			rep := &report.Report{StartedAt: time.Now(), Setup: report.Setup{Webhooks: true},
				Configs: []*report.ConfigResult{{Name: "300x30", Service: svc}}}
			rep.Finish()
			var table bytes.Buffer
			if err := rep.WriteTable(&table); err != nil {
				t.Fatal(err)
			}
			t.Log("\n" + table.String())

			wh := svc.Webhooks
			last := svc.Invariants[len(svc.Invariants)-1]
			if wh == nil || last.Name != "every purchase delivered as a signed webhook" {
				t.Fatalf("no webhook report or check: %+v", svc.Invariants)
			}
			for _, c := range svc.Invariants[:len(svc.Invariants)-1] {
				if !c.Pass {
					t.Fatalf("%s: %s", c.Name, c.Detail)
				}
			}
			if !strings.Contains(table.String(), "webhooks: purchases in the database 300") {
				t.Fatalf("table lacks the webhooks line")
			}
			if !lose {
				if !last.Pass || !rep.Pass || wh.PurchasesInDB != 300 || wh.PurchaseEvents != 300 || wh.Missing != 0 ||
					wh.Distinct != 301 || wh.Duplicates != 301 || wh.Accepted != 602 || wh.ByType[webhook.PurchaseEvent] != 300 ||
					wh.ByType["sale.started"] != 1 || wh.DrainS == nil || wh.TimedOut {
					t.Fatalf("%s: %+v", last.Detail, *wh)
				}
				return
			}
			if last.Pass || rep.Pass || !wh.TimedOut || wh.WaitS < 0.5 || wh.PurchasesInDB != 300 || wh.Missing != 1 ||
				wh.Unknown != 1 || wh.BadSignatures != 2 || wh.PurchaseEvents != 300 {
				t.Fatalf("%s: %+v", last.Detail, *wh)
			}
		})
	}
}

// TestDeployWebhookEnv: with a webhook URL every started server has
// WEBHOOK_URL and WEBHOOK_SECRET in its environment; without one, neither.
func TestDeployWebhookEnv(t *testing.T) {
	t.Parallel()
	bin := buildCmd(t, "server")
	for _, on := range []bool{true, false} {
		cfg := deploy.Config{
			AdminURL: pgtest.AdminURL(), ServerBin: bin, Units: 20, Items: 2, Servers: 2,
			Name: fmt.Sprintf("webhookenv%v", on), ReadyTimeout: time.Minute,
		}
		if on {
			cfg.WebhookURL, cfg.WebhookSecret = "http://127.0.0.1:9/webhooks", strings.Repeat("ab", 32)
		}
		dep, err := deploy.Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, pid := range dep.PIDs() {
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
			if err != nil {
				t.Fatal(err)
			}
			env := strings.Split(string(raw), "\x00")
			var got []string
			for _, e := range env {
				if strings.HasPrefix(e, "WEBHOOK_") && !slices.Contains(os.Environ(), e) {
					got = append(got, e)
				}
			}
			var want []string
			if on {
				want = []string{"WEBHOOK_URL=" + cfg.WebhookURL, "WEBHOOK_SECRET=" + cfg.WebhookSecret}
			}
			if !slices.Equal(got, want) {
				t.Errorf("server %d: WEBHOOK_* set by deploy %q, want %q", pid, got, want)
			}
		}
		if err := dep.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// buildCmd builds ./cmd/NAME of this tree into a temporary directory.
func buildCmd(t *testing.T, name string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	build := exec.Command("go", "build", "-o", out, "./cmd/"+name)
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/%s: %v\n%s", name, err, b)
	}
	return out
}
