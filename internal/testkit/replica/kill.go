package replica

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// KillTree ends pid and every process below it with SIGKILL, as when their
// machine is lost. Each PostgreSQL child leads a process group of its own,
// so killing the postmaster's group would leave them to notice its death
// on their own, and some (pg_auto_failover's monitor workers, the logger)
// never do. The tree is read before anything is killed: orphans are
// adopted by init and could not be told from the others afterwards.
func KillTree(pid int) {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		end := strings.LastIndexByte(s, ')')
		fields := strings.Fields(s[end+1:])
		if end < 0 || len(fields) < 2 {
			continue
		}
		child, err1 := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, ' ')]))
		parent, err2 := strconv.Atoi(fields[1])
		if err1 == nil && err2 == nil {
			children[parent] = append(children[parent], child)
		}
	}
	tree := []int{pid}
	for i := 0; i < len(tree); i++ {
		tree = append(tree, children[tree[i]]...)
	}
	for _, p := range tree {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}
