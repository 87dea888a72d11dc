package httpapi

import (
	"strings"
)

// The system this one replaces (Go + Redis) documented GET /health,
// item ids written "itemN" and a checkout answer whose code is in
// checkout_code. Its clients keep working through these aliases, all
// handled here: the route /health (registered in New), the item id form
// (itemID), and checkout_code (checkoutResponse; purchase reads it too).

// oldItemPrefix is the old system's item id form: item7 is item 7.
const oldItemPrefix = "item"

// itemID reads an item id as a positive integer or in the old form itemN.
func itemID(v, name string) (int64, error) {
	if rest, ok := strings.CutPrefix(v, oldItemPrefix); ok && rest != "" && rest[0] >= '1' && rest[0] <= '9' {
		v = rest
	}
	return parsePositive(v, name)
}
