package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/flashsale/flashsale/internal/testkit/apitest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// BenchmarkSoldOutCheckout is the storm's request as the server sees it:
// a checkout of a sold-out sale through the whole middleware stack and a
// batched, committed insert of its attempt. Its allocations per request
// (B/op, allocs/op) are what to compare between changes of the HTTP
// layer; its ns/op depends on the database and the box. Run it with
//
//	go test -run '^$' -bench SoldOutCheckout -benchtime 20000x ./internal/httpapi
func BenchmarkSoldOutCheckout(b *testing.B) {
	srv := apitest.Start(b, apitest.Options{})
	cur, err := srv.Sales.Current(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	saletest.SellOut(b, srv.Pool, cur.ID)
	var n atomic.Int64
	b.ReportAllocs()
	b.SetParallelism(32) // 32 requests per core in flight, so batches form
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			req := httptest.NewRequest(http.MethodPost, "/checkout?user_id=u"+strconv.FormatInt(i%5000, 10)+"&id="+strconv.FormatInt(1+i%30, 10), nil)
			rec := httptest.NewRecorder()
			srv.API.ServeHTTP(rec, req)
			if rec.Code != http.StatusConflict {
				b.Errorf("status %d: %s", rec.Code, rec.Body)
				return
			}
		}
	})
}
