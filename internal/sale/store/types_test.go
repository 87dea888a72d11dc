package store

import (
	"slices"
	"testing"
)

// The Go names of the outcomes are the enums' values, and every value of
// the enums has its Go name: a value added in a migration fails here.
func TestOutcomesMatchTheEnums(t *testing.T) {
	t.Parallel()
	named := []Outcome{Held, SalePaused, NoActiveSale, ItemNotFound, ItemUnavailable, SoldOut, UserLimitReached, RateLimited,
		Purchased, CodeNotFound, CodeExpired}
	all := append(CheckoutOutcomes(), PurchaseOutcomes()...)
	slices.Sort(named)
	slices.Sort(all)
	if !slices.Equal(named, all) {
		t.Fatalf("outcomes named in Go %v, in the enums %v", named, all)
	}
}

// A batch's codes are read per sale, each code keeping its place.
func TestBySale(t *testing.T) {
	t.Parallel()
	codes := []Code{{Sale: 2, Code: "2.a"}, {Sale: 1, Code: "1.b"}, {Sale: 2, Code: "2.c"}, {Sale: 0, Code: "d"}}
	got := bySale(codes)
	want := []saleCodes{
		{sale: 2, codes: []string{"2.a", "2.c"}, at: []int{0, 2}},
		{sale: 1, codes: []string{"1.b"}, at: []int{1}},
		{sale: 0, codes: []string{"d"}, at: []int{3}},
	}
	if len(got) != len(want) {
		t.Fatalf("bySale = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].sale != want[i].sale || !slices.Equal(got[i].codes, want[i].codes) || !slices.Equal(got[i].at, want[i].at) {
			t.Errorf("group %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}
