package sale

import (
	"testing"

	"github.com/flashsale/flashsale/internal/sale/store"
)

// Every outcome the database can return, other than success, has its error:
// a value added to the enum in a migration fails here until it is mapped.
func TestEveryOutcomeHasItsError(t *testing.T) {
	t.Parallel()
	for _, o := range store.CheckoutOutcomes() {
		_, mapped := checkoutErrors[o]
		if mapped == (o == store.Held) {
			t.Errorf("checkout outcome %q: mapped to an error %v, want %v", o, mapped, o != store.Held)
		}
	}
	for _, o := range store.PurchaseOutcomes() {
		_, mapped := purchaseErrors[o]
		if mapped == (o == store.Purchased) {
			t.Errorf("purchase outcome %q: mapped to an error %v, want %v", o, mapped, o != store.Purchased)
		}
	}
	if err := checkoutError("no_such_outcome"); err == nil {
		t.Error("an unknown outcome maps to no error")
	}
	for _, o := range append(store.CheckoutOutcomes(), store.PurchaseOutcomes()...) {
		if o == store.Held || o == store.Purchased {
			continue
		}
		if got := Outcome(outcomeError(checkoutErrors, o)); got != string(o) && Outcome(purchaseError(o)) != string(o) {
			t.Errorf("Outcome of %q's error = %q", o, got)
		}
	}
}
