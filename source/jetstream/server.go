package jetstream

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Embedded is a NATS server with JetStream running inside the process,
// file-backed in a directory: Graft's default stream.
type Embedded struct {
	srv *server.Server
	nc  *nats.Conn
	dir string
}

// EmbeddedOptions configure the embedded server.
type EmbeddedOptions struct {
	// Dir holds the JetStream files.
	Dir string
	// Listen, when not empty ("127.0.0.1:4222"), also serves NATS clients
	// on that address; otherwise only this process can connect.
	Listen string
	// StartTimeout bounds the server's start (restoring its streams from
	// disk); default 30s.
	StartTimeout time.Duration
	// MaxRecordBytes is the largest record the stream must take; the
	// server's maximum message size is raised to hold it with its headers
	// (never below NATS's default of 1 MiB).
	MaxRecordBytes int
	// SyncAlways makes every stored message fsynced before it is
	// acknowledged to the publisher (survives power loss, costs
	// throughput). Without it, accepted messages survive a crash of the
	// process but not of the machine until the periodic sync.
	SyncAlways bool
}

// StartEmbedded starts the server and connects to it in-process.
func StartEmbedded(o EmbeddedOptions) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "graft", JetStream: true, StoreDir: o.Dir, SyncAlways: o.SyncAlways,
		NoSigs: true, NoLog: true, DontListen: o.Listen == "",
	}
	if need := o.MaxRecordBytes + headerRoom; need > 1<<20 {
		opts.MaxPayload = int32(min(need, 64<<20)) // NATS's own ceiling
	}
	if o.Listen != "" {
		host, port, err := splitHostPort(o.Listen)
		if err != nil {
			return nil, err
		}
		opts.Host, opts.Port = host, port
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded JetStream: %w", err)
	}
	go srv.Start()
	timeout := o.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if !srv.ReadyForConnections(timeout) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded JetStream in %s did not start within %v: its files may be damaged "+
			"(nats-server can hang restoring a damaged stream). Nothing was read or acknowledged. Restore %s from a backup, "+
			"or move it aside to start with an empty stream: the records it holds that were not yet committed would then be lost", o.Dir, timeout, o.Dir)
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("graft"))
	if err != nil {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded JetStream: connect: %w", err)
	}
	return &Embedded{srv: srv, nc: nc, dir: o.Dir}, nil
}

// ResetConsumerState removes the stored state of a durable consumer the
// server cannot open (ErrConsumerStateDamaged), so that it can be created
// again: it then starts at the first message the stream holds. Returns
// the file removed.
func (e *Embedded) ResetConsumerState(stream, durable string) (string, error) {
	path := filepath.Join(e.dir, "jetstream", server.DEFAULT_GLOBAL_ACCOUNT, "streams", stream, "obs", durable, "o.dat")
	if err := os.Remove(path); err != nil {
		return path, fmt.Errorf("reset consumer state: %w", err)
	}
	return path, nil
}

// Conn is the in-process connection.
func (e *Embedded) Conn() *nats.Conn { return e.nc }

// ClientURL is where external clients connect, if the server listens.
func (e *Embedded) ClientURL() string { return e.srv.ClientURL() }

// Close drains the connection and stops the server.
func (e *Embedded) Close() {
	e.nc.Close()
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

func splitHostPort(addr string) (string, int, error) {
	var host string
	var port int
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			host = addr[:i]
			if _, err := fmt.Sscanf(addr[i+1:], "%d", &port); err != nil {
				return "", 0, fmt.Errorf("listen address %q: bad port", addr)
			}
			return host, port, nil
		}
	}
	return "", 0, fmt.Errorf("listen address %q: want host:port", addr)
}
