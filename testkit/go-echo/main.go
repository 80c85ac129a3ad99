// A grpc-go Echo backend for tests, run as a child process by testkit/go-backend.ts.
// It exists because grpc-go servers enforce a keepalive ping policy that grpc-js servers
// lack: by default MinTime 5 min and PermitWithoutStream false, and after 2 strikes a
// GOAWAY ENHANCE_YOUR_CALM "too_many_pings" that closes the connection.
//
// It serves /anchorpool.test.Echo/Echo on raw bytes (the same answers as the grpc-js
// echo backend) and grpc.health.v1, prints {"event":"listening","port":N} once it
// listens, takes commands on stdin lines (serving, not_serving, stats) and exits when
// stdin closes, so it never outlives its parent.
//
// Builds offline against Debian's golang-google-grpc-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o echo-go main.go
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the real proto codec first, so ours can wrap it
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
)

// rawCodec replaces the codec named "proto" (what every call without a content subtype
// uses): []byte messages pass through untouched, as the grpc-js Echo service sends them,
// and anything else (the health service's messages) goes to the real proto codec.
type rawCodec struct{ fallback encoding.Codec }

func (c rawCodec) Marshal(v interface{}) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	return c.fallback.Marshal(v)
}

func (c rawCodec) Unmarshal(data []byte, v interface{}) error {
	if p, ok := v.(*[]byte); ok {
		// grpc-go may reuse its receive buffer, so keep a copy.
		*p = append([]byte(nil), data...)
		return nil
	}
	return c.fallback.Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }

// counters is a stats.Handler: connections open now and ever, and Echo calls received.
type counters struct {
	open, total, calls int64
}

func (c *counters) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }

func (c *counters) HandleConn(_ context.Context, s stats.ConnStats) {
	switch s.(type) {
	case *stats.ConnBegin:
		atomic.AddInt64(&c.open, 1)
		atomic.AddInt64(&c.total, 1)
	case *stats.ConnEnd:
		atomic.AddInt64(&c.open, -1)
	}
}

type methodKey struct{}

func (c *counters) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, methodKey{}, info.FullMethodName)
}

func (c *counters) HandleRPC(ctx context.Context, s stats.RPCStats) {
	// Counted at Begin, before the handler runs: a client that has its answer finds the
	// call counted. Health calls are not counted, as in the grpc-js backend.
	if _, ok := s.(*stats.Begin); !ok {
		return
	}
	if method, _ := ctx.Value(methodKey{}).(string); strings.HasPrefix(method, "/anchorpool.test.Echo/") {
		atomic.AddInt64(&c.calls, 1)
	}
}

// echoServer answers {"server":NAME,"peer":"ip:port"}; "sleep:<ms>" answers after that
// delay and "fail" with INTERNAL.
type echoServer struct{ name string }

func (e *echoServer) echo(ctx context.Context, request []byte) ([]byte, error) {
	text := string(request)
	if strings.HasPrefix(text, "sleep:") {
		millis, err := strconv.Atoi(strings.TrimPrefix(text, "sleep:"))
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad sleep request %q", text)
		}
		timer := time.NewTimer(time.Duration(millis) * time.Millisecond)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	}
	if text == "fail" {
		return nil, status.Error(codes.Internal, "asked to fail")
	}
	from := ""
	if p, ok := peer.FromContext(ctx); ok {
		from = p.Addr.String()
	}
	return json.Marshal(map[string]string{"server": e.name, "peer": from})
}

// echoDesc is written by hand (no protoc): one unary method on raw bytes.
var echoDesc = grpc.ServiceDesc{
	ServiceName: "anchorpool.test.Echo",
	HandlerType: (*interface{})(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Echo",
		Handler: func(srv interface{}, ctx context.Context, dec func(interface{}) error, interceptor grpc.UnaryServerInterceptor) (interface{}, error) {
			var request []byte
			if err := dec(&request); err != nil {
				return nil, err
			}
			return srv.(*echoServer).echo(ctx, request)
		},
	}},
	Metadata: "anchorpool/test/echo",
}

// emit prints one JSON line on stdout, the only channel to the parent.
func emit(fields map[string]interface{}) {
	line, _ := json.Marshal(fields)
	fmt.Println(string(line))
}

func main() {
	port := flag.Int("port", 0, "port on 127.0.0.1 (0: a free one)")
	name := flag.String("name", "backend", "server name in Echo answers")
	minPingMillis := flag.Int("min-ping-millis", 0, "keepalive EnforcementPolicy MinTime in ms (0: grpc-go's default policy)")
	flag.Parse()

	encoding.RegisterCodec(rawCodec{fallback: encoding.GetCodec("proto")})

	counts := &counters{}
	options := []grpc.ServerOption{grpc.StatsHandler(counts)}
	// Without the flag no policy is passed at all, so what is enforced is grpc-go's own
	// default, as a production server that never set one.
	if *minPingMillis > 0 {
		options = append(options, grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime: time.Duration(*minPingMillis) * time.Millisecond,
		}))
	}
	server := grpc.NewServer(options...)
	server.RegisterService(&echoDesc, &echoServer{name: *name})
	healthServer := health.NewServer()
	healthServer.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(server, healthServer)

	listener, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "listen:", err)
		os.Exit(1)
	}
	go func() {
		if err := server.Serve(listener); err != nil {
			fmt.Fprintln(os.Stderr, "serve:", err)
			os.Exit(1)
		}
	}()
	emit(map[string]interface{}{"event": "listening", "port": listener.Addr().(*net.TCPAddr).Port})

	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		switch command := strings.TrimSpace(lines.Text()); command {
		case "serving", "not_serving":
			serving := command == "serving"
			next := healthpb.HealthCheckResponse_NOT_SERVING
			if serving {
				next = healthpb.HealthCheckResponse_SERVING
			}
			healthServer.SetServingStatus("", next)
			// An answer, so the parent knows Watch streams were told before it goes on.
			emit(map[string]interface{}{"event": "health", "serving": serving})
		case "stats":
			emit(map[string]interface{}{
				"event":            "stats",
				"connectionsOpen":  atomic.LoadInt64(&counts.open),
				"connectionsTotal": atomic.LoadInt64(&counts.total),
				"calls":            atomic.LoadInt64(&counts.calls),
			})
		case "":
		default:
			fmt.Fprintf(os.Stderr, "unknown command %q\n", command)
		}
	}
	// stdin closed: the parent is gone (or asked us to go).
	os.Exit(0)
}
