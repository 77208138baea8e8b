// Command deploygen writes the deployment files generated from the code, so
// that they never drift from it (the tests of services/harness/cluster fail when a
// committed one is stale): the ClickHouse cluster schema from
// schemas/clickhouse (deploy/clickhouse/cluster/schema.sql) and the JetStream
// stream configurations from services/lib/bus (deploy/nats/streams/*.json and
// deploy/k8s/base/nats-streams.yaml).
// Run it from services/harness/cluster: go run ./cmd/deploygen
//
// With -from NNN it writes nothing and prints the cluster form of the
// migrations from NNN_*.sql on, for a cluster that has the earlier ones:
// go run ./cmd/deploygen -from 011 | clickhouse-client --multiquery
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hinscore/hinscore/schemas"
	"github.com/hinscore/hinscore/services/harness/cluster"
	"github.com/hinscore/hinscore/services/harness/cluster/chschema"
)

func main() {
	if err := realMain(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "deploygen:", err)
		os.Exit(1)
	}
}

func realMain(args []string) error {
	o := chschema.DefaultOptions()
	fs := flag.NewFlagSet("deploygen", flag.ContinueOnError)
	deploy := fs.String("deploy", "../../../deploy", "the repository's deploy directory")
	fs.StringVar(&o.Cluster, "cluster", o.Cluster, "ClickHouse remote_servers cluster name")
	fs.StringVar(&o.Database, "database", o.Database, "ClickHouse database (part of the replicas' ZooKeeper paths)")
	fs.StringVar(&o.From, "from", "", "print only the migrations from this one on (e.g. 011), for a cluster that has the earlier ones; write nothing")
	if err := fs.Parse(args); err != nil {
		return err
	}
	schema, err := chschema.Generate(schemas.ClickHouse, o)
	if err != nil {
		return err
	}
	if o.From != "" {
		_, err := os.Stdout.Write(schema)
		return err
	}
	if err := write(filepath.Join(*deploy, "clickhouse", "cluster", "schema.sql"), schema); err != nil {
		return err
	}
	streams, err := cluster.StreamFiles()
	if err != nil {
		return err
	}
	for name, data := range streams {
		if err := write(filepath.Join(*deploy, "nats", "streams", name+".json"), data); err != nil {
			return err
		}
	}
	manifest, err := cluster.StreamsManifest()
	if err != nil {
		return err
	}
	return write(filepath.Join(*deploy, "k8s", "base", "nats-streams.yaml"), manifest)
}

func write(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}
