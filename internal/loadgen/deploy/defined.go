package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/flashsale/flashsale/internal/sale"
)

// A defined configuration runs the sale a shop would define: the servers
// generate no sale (SALE_AUTOGENERATE=false), and once they are ready the
// sale is defined through the admin API, as a shop's tooling does, to start
// just past the shortest SALE_EDIT_LEAD.

const definedEditLead = 2 * time.Second

// definedEnv is what the servers of a defined configuration run with.
func definedEnv(token string) []string {
	return []string{"SALE_AUTOGENERATE=false", "SALE_EDIT_LEAD=" + definedEditLead.String(), "ADMIN_TOKEN=bench:" + token}
}

func newAdminToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// DefinedSale is the benchmark's defined sale: units spread evenly over
// items named and priced like a shop's catalogue, in one window that opens
// a moment after start and lasts d.
func DefinedSale(start time.Time, d time.Duration, units, items int) sale.Definition {
	def := sale.Definition{StartsAt: start.UTC().Truncate(time.Second), EndsAt: start.UTC().Truncate(time.Second).Add(d)}
	for i := range items {
		n := units / items
		if i < units%items {
			n++
		}
		def.Items = append(def.Items, sale.ItemDefinition{
			SKU: fmt.Sprintf("BENCH-%04d", i+1), Name: fmt.Sprintf("Bench product %d", i+1),
			Description: "A product of the benchmark's defined sale.",
			Price:       fmt.Sprintf("%d.%02d", 5+i%95, (i*37)%100), Currency: "EUR", Units: int32(n),
			ImageURL: fmt.Sprintf("https://img.example/bench/%d.jpg", i+1),
		})
	}
	return def
}

// defineSale posts def to the server at base and waits until it is the
// current sale.
func defineSale(ctx context.Context, base, token string, def sale.Definition) error {
	body, err := json.Marshal(def)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/admin/sales", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("define the sale: %w", err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("define the sale: %s: %s", resp.Status, msg)
	}
	deadline := time.Now().Add(definedEditLead + time.Minute)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/sales/current")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the defined sale starting %s did not open", def.StartsAt)
}
