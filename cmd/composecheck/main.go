// Command composecheck validates Compose files the way `docker compose
// config -q` does, with the library Compose v2 loads them with
// (compose-spec/compose-go: schema, interpolation, consistency), so that
// `make compose-check` works on a machine without Compose.
//
// Usage:
//
//	composecheck [FILE...]  # default docker-compose.yml
package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	files := os.Args[1:]
	if len(files) == 0 {
		files = []string{"docker-compose.yml"}
	}
	if err := check(files); err != nil {
		fmt.Fprintf(os.Stderr, "composecheck: %s: %v\n", strings.Join(files, ", "), err)
		os.Exit(1)
	}
	fmt.Printf("%s: valid (compose-go)\n", strings.Join(files, ", "))
}

func check(files []string) error {
	// The environment and a .env file fill ${VARIABLES} as Compose does.
	opts, err := cli.NewProjectOptions(files, cli.WithOsEnv, cli.WithDotEnv)
	if err != nil {
		return err
	}
	_, err = opts.LoadProject(context.Background())
	return err
}
