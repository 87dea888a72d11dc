// Package testutil holds the small helpers every kind of test here uses:
// a test logger, running calls together, and polling for a state another
// party reaches on its own schedule.
package testutil
