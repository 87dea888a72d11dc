package usage

import "testing"

func TestPostgresTitles(t *testing.T) {
	t.Parallel()
	for title, db := range map[string]string{
		"postgres: 15/main: postgres flashsale_bench_1_100x100 127.0.0.1(34750) idle": "flashsale_bench_1_100x100",
		"postgres: app shop [local] SELECT":                                           "shop",
		"postgres: 15/main: autovacuum worker flashsale":                              "flashsale",
		"postgres: 15/main: walwriter":                                                "",
		"/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main":          "",
	} {
		if got := pgTitleDB(title); got != db {
			t.Errorf("pgTitleDB(%q) = %q, want %q", title, got, db)
		}
	}
	if pid, ok := pgParallelLeader("postgres: 15/main: parallel worker for PID 4321 "); !ok || pid != 4321 {
		t.Errorf("pgParallelLeader: %d %v", pid, ok)
	}
	if _, ok := pgParallelLeader("postgres: 15/main: checkpointer"); ok {
		t.Error("pgParallelLeader: a checkpointer has a leader")
	}
}
