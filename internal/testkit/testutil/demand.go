package testutil

import "fmt"

// Request is one user's request for an item.
type Request struct {
	User string
	Item int64
}

// SpreadDemand returns perUser requests from each of users users, named
// prefix-00, prefix-01, ..., user by user; request j of user u asks for
// item (u+j)%items+1. Each item is then wanted by users*perUser/items
// distinct users (users ≥ items), the demand the race tests reason about.
func SpreadDemand(prefix string, users, perUser, items int) []Request {
	reqs := make([]Request, 0, users*perUser)
	for u := range users {
		for j := range perUser {
			reqs = append(reqs, Request{User: fmt.Sprintf("%s-%02d", prefix, u), Item: int64((u+j)%items + 1)})
		}
	}
	return reqs
}
