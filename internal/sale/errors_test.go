package sale

import (
	"testing"

	"github.com/flashsale/flashsale/db"
)

// Every outcome the database can return, other than success, has its error:
// a value added to the enum in a migration fails here until it is mapped.
func TestEveryOutcomeHasItsError(t *testing.T) {
	t.Parallel()
	for _, o := range db.AllCheckoutOutcomeValues() {
		_, mapped := checkoutErrors[o]
		if mapped == (o == db.CheckoutOutcomeHeld) {
			t.Errorf("checkout outcome %q: mapped to an error %v, want %v", o, mapped, o != db.CheckoutOutcomeHeld)
		}
	}
	for _, o := range db.AllPurchaseOutcomeValues() {
		_, mapped := purchaseErrors[o]
		if mapped == (o == db.PurchaseOutcomePurchased) {
			t.Errorf("purchase outcome %q: mapped to an error %v, want %v", o, mapped, o != db.PurchaseOutcomePurchased)
		}
	}
	if err := checkoutError("no_such_outcome"); err == nil {
		t.Error("an unknown outcome maps to no error")
	}
}
