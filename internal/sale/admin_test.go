package sale_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testkit/pgtest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/internal/testkit/testutil"
)

// editLead is the shortest SALE_EDIT_LEAD, so that defined sales start
// within seconds of a test defining them.
const editLead = 2 * time.Second

func definedSettings() sale.Settings {
	s := saletest.DefaultSettings
	s.EditLead = editLead
	s.NoGeneratedSales = true
	return s
}

func dbNow(t *testing.T, env *saletest.Env) time.Time {
	t.Helper()
	var now time.Time
	if err := env.Pool.QueryRow(t.Context(), "SELECT now()").Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

func definition(start time.Time, d time.Duration, units ...int32) sale.Definition {
	def := sale.Definition{StartsAt: start, EndsAt: start.Add(d), PerUserLimit: 3, HoldTTL: "1m0s"}
	for i, n := range units {
		def.Items = append(def.Items, sale.ItemDefinition{
			SKU: fmt.Sprintf("SKU-%d", i+1), Name: fmt.Sprintf("Product %d", i+1), Description: "A real product",
			Price: fmt.Sprintf("%d.50", 10+i), Currency: "EUR", Units: n, ImageURL: fmt.Sprintf("https://cdn.example/%d.jpg", i+1),
		})
	}
	return def
}

// waitUntilOpen waits for sale id to be the current sale by the database's clock.
func waitUntilOpen(t *testing.T, env *saletest.Env, id int64) {
	t.Helper()
	testutil.Poll(t, 10*time.Second, func() error {
		cur, err := env.Service.Current(t.Context())
		if err != nil || cur.ID != id {
			return fmt.Errorf("sale %d not open yet (current %d, %v)", id, cur.ID, err)
		}
		return nil
	})
}

// A defined sale has exactly the units its items name, each item its own,
// and the definition is recorded with who made it.
func TestDefinedSaleHasExactlyItsUnits(t *testing.T) {
	t.Parallel()
	env := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithoutSales())
	def := definition(dbNow(t, env).Add(time.Hour), time.Hour, 5, 7, 1)
	made, err := env.Service.DefineSale(t.Context(), "token:ops", def)
	if err != nil {
		t.Fatal(err)
	}
	if made.UnitsTotal != 13 || made.Items != 3 || made.PerUserLimit != 3 || made.HoldTTL != time.Minute {
		t.Errorf("sale %+v, want 13 units over 3 items, cap 3, hold 1m", made)
	}
	for i, want := range []int64{5, 7, 1} {
		if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM units WHERE sale_id = $1 AND item_id = $2", made.ID, i+1); n != want {
			t.Errorf("item %d has %d units, want %d", i+1, n, want)
		}
	}
	_, items, err := env.Service.SaleWithItems(t.Context(), made.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := sale.DefinitionOf(made, items); string(sale.EncodeDefinition(got)) != string(sale.EncodeDefinition(def)) {
		t.Errorf("read back:\n%s\nwant:\n%s", sale.EncodeDefinition(got), sale.EncodeDefinition(def))
	}
	if n := pgtest.Scalar(t, env.Pool,
		"SELECT count(*) FROM admin_audit WHERE sale_id = $1 AND action = 'create' AND actor = 'token:ops' AND units_total = 13 AND items = 3",
		made.ID); n != 1 {
		t.Errorf("%d audit rows for the create, want 1", n)
	}
}

// A definition takes the windows of the generated sales it overlaps that
// have not started, and the scheduler does not bring them back; it can
// never overlap the sale that runs.
func TestDefinitionReplacesGeneratedSalesNotStarted(t *testing.T) {
	t.Parallel()
	settings := saletest.DefaultSettings
	settings.Duration, settings.EditLead = 24*time.Hour, editLead
	env := saletest.New(t, saletest.WithSettings(settings))
	next := env.Sale.EndsAt // the generated sale after the current one starts here

	_, err := env.Service.DefineSale(t.Context(), "cli:ann", definition(env.Sale.EndsAt.Add(-time.Hour), 2*time.Hour, 10))
	if !errors.Is(err, sale.ErrWindowTaken) {
		t.Fatalf("a definition over the running sale: %v, want ErrWindowTaken", err)
	}
	made, err := env.Service.DefineSale(t.Context(), "cli:ann", definition(next.Add(time.Hour), time.Hour, 10))
	if err != nil {
		t.Fatalf("a definition inside the next generated window: %v", err)
	}
	if err := env.Service.EnsureSales(t.Context(), next.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM sales WHERE starts_at >= $1 AND starts_at < $2",
		next, next.Add(settings.Duration)); n != 1 {
		t.Errorf("%d sales in the next window, want only the defined one", n)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM sales WHERE id = $1 AND defined_by = 'cli:ann'", made.ID); n != 1 {
		t.Errorf("the defined sale is missing")
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'checkout_attempts'::regclass"); n != 4 {
		t.Errorf("%d attempt partitions, want 4 (no sale, current, defined, the window after): the replaced sale's must go", n)
	}
}

// Servers applying the same file at once make one sale, once.
func TestTwoServersApplyTheSameDefinition(t *testing.T) {
	t.Parallel()
	a := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithoutSales())
	b := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithDatabase(a.URL), saletest.WithoutSales())
	def := definition(dbNow(t, a).Add(time.Hour), time.Hour, 40, 60)
	var created, unchanged atomic.Int32
	testutil.Together(8, 16, func(i int) {
		svc := []*sale.Service{a.Service, b.Service}[i%2]
		_, applied, err := svc.ApplySale(context.Background(), "cli:ops", def)
		switch {
		case err != nil:
			t.Errorf("apply %d: %v", i, err)
		case applied == sale.Created:
			created.Add(1)
		case applied == sale.Unchanged:
			unchanged.Add(1)
		default:
			t.Errorf("apply %d: %s", i, applied)
		}
	})
	if created.Load() != 1 || unchanged.Load() != 15 {
		t.Errorf("%d created, %d unchanged; want 1 and 15", created.Load(), unchanged.Load())
	}
	if n := pgtest.Scalar(t, a.Pool, "SELECT count(*) FROM units"); n != 100 {
		t.Errorf("%d units, want 100", n)
	}
	if n := pgtest.Scalar(t, a.Pool, "SELECT count(*) FROM admin_actions"); n != 1 {
		t.Errorf("%d audit rows, want 1", n)
	}
	// A changed file replaces the sale in place.
	def.Items[0].Units = 41
	made, applied, err := a.Service.ApplySale(t.Context(), "cli:ops", def)
	if err != nil || applied != sale.Replaced || made.UnitsTotal != 101 {
		t.Errorf("apply changed: %s %+v %v, want replaced with 101 units", applied, made, err)
	}
}

// No edit changes a sale once checkouts may run against it: edits racing
// the start either commit before it or are refused, and every unit held is
// one of the final definition's.
func TestEditsRacingTheStartOfASale(t *testing.T) {
	t.Parallel()
	env := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithoutSales())
	start := dbNow(t, env).Add(editLead + 1500*time.Millisecond).Truncate(time.Millisecond)
	defs := []sale.Definition{definition(start, time.Hour, 30, 30), definition(start, time.Hour, 50)}
	defs[1].Items[0].SKU = "OTHER"
	made, err := env.Service.DefineSale(t.Context(), "token:a", defs[0])
	if err != nil {
		t.Fatal(err)
	}

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var replaced, refused atomic.Int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; ctx.Err() == nil; i++ {
			_, err := env.Service.ReplaceSale(ctx, fmt.Sprintf("token:%d", i), made.ID, defs[i%2])
			switch {
			case err == nil:
				replaced.Add(1)
			case errors.Is(err, sale.ErrSaleStarted), errors.Is(err, sale.ErrInvalidDefinition):
				refused.Add(1) // the sale started, or starts within the lead
				if refused.Load() > 20 {
					return
				}
			default:
				t.Errorf("replace %d: %v", i, err)
				return
			}
		}
	}()
	waitUntilOpen(t, env, made.ID)
	var held atomic.Int32
	testutil.Together(8, 200, func(i int) {
		_, err := env.Service.Checkout(context.Background(), sale.CheckoutRequest{
			UserID: fmt.Sprintf("racer-%d", i), SKU: []string{"SKU-1", "SKU-2", "OTHER"}[i%3],
		})
		if err == nil {
			held.Add(1)
		}
	})
	<-done
	if replaced.Load() == 0 || refused.Load() == 0 {
		t.Fatalf("%d replaces went through and %d were refused; the race needs both", replaced.Load(), refused.Load())
	}
	if held.Load() == 0 {
		t.Fatal("no checkout held a unit")
	}
	if n := pgtest.Scalar(t, env.Pool,
		"SELECT count(*) FROM admin_actions a, sales s WHERE s.id = a.sale_id AND a.at >= s.starts_at - $1::interval",
		editLead.String()); n != 0 {
		t.Errorf("%d edits committed within the lead before the start", n)
	}
	if n := pgtest.Scalar(t, env.Pool,
		"SELECT count(*) FROM admin_actions a WHERE a.at >= (SELECT min(created_at) FROM checkout_attempts)"); n != 0 {
		t.Errorf("%d edits after the first checkout", n)
	}
	// The sale is one definition, whole: its units are its items' units,
	// and every hold is on one of them.
	if n := pgtest.Scalar(t, env.Pool,
		"SELECT count(*) FROM sales s WHERE s.units_total <> (SELECT count(*) FROM units u WHERE u.sale_id = s.id) "+
			"OR s.units_total <> (SELECT sum(units) FROM items i WHERE i.sale_id = s.id)"); n != 0 {
		t.Errorf("the sale's units are not its definition's")
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM units WHERE held_by IS NOT NULL"); n != int64(held.Load()) {
		t.Errorf("%d units held, %d checkouts answered held", n, held.Load())
	}
}

// Pausing refuses new checkouts, stores them as sale_paused, and lets holds
// made before it be bought; ending closes the window at once.
func TestPauseResumeAndEndARunningSale(t *testing.T) {
	t.Parallel()
	env := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithoutSales())
	def := definition(dbNow(t, env).Add(editLead+500*time.Millisecond), time.Hour, 10)
	made, err := env.Service.DefineSale(t.Context(), "token:ops", def)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := env.Service.ControlSale(t.Context(), "token:ops", made.ID, sale.Pause); !errors.Is(err, sale.ErrSaleNotRunning) {
		t.Errorf("pause before the start: %v, want ErrSaleNotRunning", err)
	}
	waitUntilOpen(t, env, made.ID)
	ctx := t.Context()
	// A deploy job applying its file again while the sale runs changes nothing.
	if _, applied, err := env.Service.ApplySale(ctx, "cli:deploy", def); err != nil || applied != sale.Unchanged {
		t.Errorf("applying the running sale's own file: %s, %v; want unchanged", applied, err)
	}
	hold, err := env.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "early", SKU: "SKU-1"})
	if err != nil {
		t.Fatal(err)
	}
	if hold.Item.SKU != "SKU-1" || hold.Item.Currency != "EUR" || hold.Item.PriceCents != 1050 ||
		!strings.HasPrefix(hold.Item.ImageURL, "https://") {
		t.Errorf("held item %+v, want the defined SKU-1", hold.Item)
	}
	for _, want := range []bool{true, false} {
		if _, changed, err := env.Service.ControlSale(ctx, "token:ops", made.ID, sale.Pause); err != nil || changed != want {
			t.Fatalf("pause: changed %v, %v; want %v", changed, err, want)
		}
	}
	if _, err := env.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 1}); !errors.Is(err, sale.ErrSalePaused) {
		t.Errorf("checkout while paused: %v, want ErrSalePaused", err)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM checkout_attempts WHERE outcome = 'sale_paused' AND user_id = 'late'"); n != 1 {
		t.Errorf("%d sale_paused attempts stored, want 1", n)
	}
	if _, err := env.Service.Purchase(ctx, hold.Code, "early"); err != nil {
		t.Errorf("buying a hold made before the pause: %v", err)
	}
	if _, _, err := env.Service.ControlSale(ctx, "token:ops", made.ID, sale.Resume); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "late", ItemID: 1}); err != nil {
		t.Errorf("checkout after resume: %v", err)
	}
	if _, _, err := env.Service.ControlSale(ctx, "token:ops", made.ID, sale.End); err != nil {
		t.Fatal(err)
	}
	if _, err := env.Service.Checkout(ctx, sale.CheckoutRequest{UserID: "later", ItemID: 1}); !errors.Is(err, sale.ErrNoActiveSale) {
		t.Errorf("checkout after end: %v, want ErrNoActiveSale", err)
	}
	if _, _, err := env.Service.ControlSale(ctx, "token:ops", made.ID, sale.Resume); !errors.Is(err, sale.ErrSaleNotRunning) {
		t.Errorf("resume after end: %v, want ErrSaleNotRunning", err)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM admin_audit WHERE sale_id = $1", made.ID); n != 4 {
		t.Errorf("%d audit rows, want 4 (create, pause, resume, end)", n)
	}
}

// Every rule of a definition is checked at once, each with its field.
func TestDefinitionErrorsNameTheirFields(t *testing.T) {
	t.Parallel()
	env := saletest.New(t, saletest.WithSettings(definedSettings()), saletest.WithoutSales())
	def := definition(dbNow(t, env).Add(time.Second), -time.Minute, 0, 1, 1)
	def.Items[1].SKU = def.Items[2].SKU
	def.Items[1].Price = "-1"
	def.Items[2].Price = "1.234"
	def.Items[2].Currency = "ZZZ"
	def.Items[0].ImageURL = "javascript:alert(1)"
	_, err := env.Service.DefineSale(t.Context(), "t", def)
	var bad *sale.DefinitionError
	if !errors.As(err, &bad) || !errors.Is(err, sale.ErrInvalidRequest) {
		t.Fatalf("DefineSale: %v, want a DefinitionError", err)
	}
	var got []string
	for _, f := range bad.Fields {
		got = append(got, f.Field)
	}
	want := "starts_at ends_at items[0].units items[0].image_url items[1].price items[2].sku items[2].currency"
	if strings.Join(got, " ") != want {
		t.Errorf("fields %q, want %q (%v)", strings.Join(got, " "), want, err)
	}
	if n := pgtest.Scalar(t, env.Pool, "SELECT count(*) FROM sales"); n != 0 {
		t.Errorf("%d sales made from a bad definition", n)
	}
}
