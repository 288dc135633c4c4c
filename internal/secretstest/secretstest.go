// Package secretstest runs an in-process gRPC server that implements
// Secret Manager's AccessSecretVersion and AddSecretVersion, so that tests
// drive the real secretmanager client against it.
package secretstest

import (
	"context"
	"fmt"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server is a Secret Manager service holding secrets in memory.
type Server struct {
	secretmanagerpb.UnimplementedSecretManagerServiceServer

	// Addr is the host:port the server listens on.
	Addr string

	mu       sync.Mutex
	versions map[string][][]byte // "projects/P/secrets/S" -> versions, 1-based
	fail     codes.Code
	gate     chan struct{}
	calls    atomic.Int64
}

// Start serves on a loopback port until the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: lis.Addr().String(), versions: map[string][][]byte{}}
	g := grpc.NewServer()
	secretmanagerpb.RegisterSecretManagerServiceServer(g, s)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return s
}

// Create makes an empty secret id in project, as "gcloud secrets create" does.
func (s *Server) Create(project, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "projects/" + project + "/secrets/" + id
	if _, ok := s.versions[key]; !ok {
		s.versions[key] = nil
	}
}

// Put adds data as the newest version of secret id in project.
func (s *Server) Put(project, id string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := "projects/" + project + "/secrets/" + id
	s.versions[key] = append(s.versions[key], append([]byte(nil), data...))
}

// FailWith makes every call fail with code; codes.OK restores service.
func (s *Server) FailWith(code codes.Code) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = code
}

// Hold makes AccessSecretVersion calls wait until the returned function is
// called, so that a test can pile up concurrent callers.
func (s *Server) Hold() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.gate = gate
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

// AccessCalls counts the AccessSecretVersion calls received.
func (s *Server) AccessCalls() int64 { return s.calls.Load() }

// AccessSecretVersion implements the RPC: "latest" or a version number.
func (s *Server) AccessSecretVersion(ctx context.Context, req *secretmanagerpb.AccessSecretVersionRequest) (*secretmanagerpb.AccessSecretVersionResponse, error) {
	s.calls.Add(1)
	s.mu.Lock()
	gate, fail := s.gate, s.fail
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != codes.OK {
		return nil, status.Error(fail, "injected failure")
	}
	secret, version, ok := strings.Cut(req.GetName(), "/versions/")
	if !ok {
		return nil, status.Errorf(codes.InvalidArgument, "bad name %q", req.GetName())
	}
	s.mu.Lock()
	vs := s.versions[secret]
	s.mu.Unlock()
	n := len(vs)
	if version != "latest" {
		if _, err := fmt.Sscanf(version, "%d", &n); err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "bad version %q", version)
		}
	}
	if n < 1 || n > len(vs) {
		return nil, status.Errorf(codes.NotFound, "Secret Version [%s] not found.", req.GetName())
	}
	data := vs[n-1]
	sum := int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)))
	return &secretmanagerpb.AccessSecretVersionResponse{
		Name:    fmt.Sprintf("%s/versions/%d", secret, n),
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	}, nil
}

// AddSecretVersion implements the RPC, checking the payload's CRC32C.
func (s *Server) AddSecretVersion(_ context.Context, req *secretmanagerpb.AddSecretVersionRequest) (*secretmanagerpb.SecretVersion, error) {
	s.mu.Lock()
	fail := s.fail
	s.mu.Unlock()
	if fail != codes.OK {
		return nil, status.Error(fail, "injected failure")
	}
	data := req.GetPayload().GetData()
	if sum := req.GetPayload().DataCrc32C; sum != nil && *sum != int64(crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))) {
		return nil, status.Error(codes.DataLoss, "checksum mismatch")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.versions[req.GetParent()]; !ok {
		return nil, status.Errorf(codes.NotFound, "Secret [%s] not found.", req.GetParent())
	}
	s.versions[req.GetParent()] = append(s.versions[req.GetParent()], append([]byte(nil), data...))
	return &secretmanagerpb.SecretVersion{
		Name:  fmt.Sprintf("%s/versions/%d", req.GetParent(), len(s.versions[req.GetParent()])),
		State: secretmanagerpb.SecretVersion_ENABLED,
	}, nil
}
