package secrets

import (
	"context"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strings"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// versionName reports whether name is a version's resource name,
// projects/P/secrets/ID/versions/V, with a valid ID and P and V not empty.
func versionName(name string) bool {
	p := strings.Split(name, "/")
	return len(p) == 6 && p[0] == "projects" && p[1] != "" && p[2] == "secrets" && validID(p[3]) &&
		p[4] == "versions" && p[5] != ""
}

var crc32c = crc32.MakeTable(crc32.Castagnoli)

// SecretManager reads secrets from Google Secret Manager. A name is a secret
// id in Project (its "latest" version), a full version resource name
// ("projects/P/secrets/S/versions/3") to pin a version, or an absolute file
// path, read as Dir reads it, for secrets mounted with --set-secrets.
type SecretManager struct {
	Project string
	// Timeout bounds one read, retries included: the client retries an
	// unavailable service with backoff, and a request should not wait on a
	// secret for the client's default minute.
	Timeout time.Duration
	client  *secretmanager.Client
}

// NewSecretManager connects to Secret Manager. emulatorHost, when not
// empty, is a host:port reached without TLS or credentials: a local server
// for tests and local runs.
func NewSecretManager(ctx context.Context, project, emulatorHost string) (*SecretManager, error) {
	var opts []option.ClientOption
	if emulatorHost != "" {
		opts = append(opts,
			option.WithEndpoint(emulatorHost),
			option.WithoutAuthentication(),
			option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	}
	c, err := secretmanager.NewClient(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("secret manager client: %w", err)
	}
	return &SecretManager{Project: project, Timeout: 10 * time.Second, client: c}, nil
}

// Close releases the client's connection.
func (s *SecretManager) Close() error { return s.client.Close() }

// Resource returns the version resource name that name stands for.
func (s *SecretManager) Resource(name string) (string, error) {
	switch {
	case versionName(name):
		return name, nil
	case validID(name):
		if s.Project == "" {
			return "", fmt.Errorf("secret %q: no project: set GOOGLE_CLOUD_PROJECT", name)
		}
		return "projects/" + s.Project + "/secrets/" + name + "/versions/latest", nil
	}
	return "", fmt.Errorf("secret %q: %w: want a secret id, a version resource name or an absolute path", name, ErrNotFound)
}

// Secret reads the secret's payload and checks its CRC32C.
func (s *SecretManager) Secret(ctx context.Context, name string) ([]byte, error) {
	if filepath.IsAbs(name) {
		return Dir{}.Secret(ctx, name)
	}
	res, err := s.Resource(name)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	resp, err := s.client.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: res})
	if err != nil {
		return nil, fmt.Errorf("secret %q: %w", name, classifyRPC(err))
	}
	data := resp.GetPayload().GetData()
	if sum := resp.GetPayload().DataCrc32C; sum != nil && int64(crc32.Checksum(data, crc32c)) != *sum {
		return nil, fmt.Errorf("secret %q: %w: payload checksum mismatch", name, ErrUnavailable)
	}
	return data, nil
}

// AddVersion stores data as the new latest version of secret id and returns
// the version's resource name.
func (s *SecretManager) AddVersion(ctx context.Context, id string, data []byte) (string, error) {
	if !validID(id) || s.Project == "" {
		return "", fmt.Errorf("add version: want a secret id and a project, got %q in %q", id, s.Project)
	}
	sum := int64(crc32.Checksum(data, crc32c))
	v, err := s.client.AddSecretVersion(ctx, &secretmanagerpb.AddSecretVersionRequest{
		Parent:  "projects/" + s.Project + "/secrets/" + id,
		Payload: &secretmanagerpb.SecretPayload{Data: data, DataCrc32C: &sum},
	})
	if err != nil {
		return "", fmt.Errorf("add version to secret %q: %w", id, classifyRPC(err))
	}
	return v.GetName(), nil
}

func classifyRPC(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Errorf("%w (%v)", ErrPermissionDenied, err)
	case codes.FailedPrecondition:
		// A disabled or destroyed version: it exists but cannot be read.
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return fmt.Errorf("%w (%v)", ErrUnavailable, err)
}
