package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"impo.com.uy/copetes/backend/internal/emulators"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	emulators.Stop()
	os.Exit(code)
}

var collections atomic.Int64

// sessionsStore points the tool at the Firestore emulator's sessions
// database, in a collection of the test's own, as an operator would point
// it at production; it returns that store, to read what the tool wrote.
func sessionsStore(t *testing.T) store.Store {
	t.Helper()
	host := emulators.Firestore(t).Host
	collection := fmt.Sprintf("admin-%d", collections.Add(1))
	for k, v := range map[string]string{
		"STATE_STORE": "firestore", "GOOGLE_CLOUD_PROJECT": "impo-test", "FIRESTORE_EMULATOR_HOST": host,
		"STATE_COLLECTION": collection, "FIRESTORE_SESSIONS_DATABASE": "sessions",
	} {
		t.Setenv(k, v)
	}
	f, err := store.NewFirestore(context.Background(), "impo-test", "sessions", collection)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestAccount_ChangesEndOrReopenSessions: each account change does to the
// account's open sessions what the README says, in the sessions database.
func TestAccount_ChangesEndOrReopenSessions(t *testing.T) {
	st := sessionsStore(t)
	dir := t.TempDir()
	ctx := context.Background()
	n := 0
	// refused says whether a token of ana issued at iat is refused now.
	refused := func(iat time.Time) bool {
		t.Helper()
		n++
		why, err := session.Revocations{Store: st}.Refused(ctx, session.Claims{ID: fmt.Sprint("jti-", n), Subject: "ana", IssuedAt: iat.Unix()})
		if err != nil {
			t.Fatal(err)
		}
		return why != ""
	}
	run := func(stdin string, args ...string) string {
		t.Helper()
		_, stderr, err := adminStreams(t, dir, stdin, args...)
		if err != nil {
			t.Fatalf("admin %v: %v\n%s", args, err, stderr)
		}
		return stderr
	}

	run("una contraseña larga\n", "account", "add", "--name", "ana", "--roles", "editor")
	opened := time.Now().Add(-time.Minute)
	run("", "account", "update", "--name", "ana", "--roles", "editor,lector")
	if refused(opened) {
		t.Fatal("adding the account or changing its roles ended its sessions")
	}

	stderr := run("otra contraseña larga\n", "account", "update", "--name", "ana", "--password")
	if !refused(opened) || !strings.Contains(stderr, "sesiones de ana cerradas") {
		t.Fatalf("a new password left a session opened before it (stderr: %s)", stderr)
	}
	if refused(time.Now().Add(2 * time.Second)) {
		t.Fatal("a new password refuses the sessions opened after it")
	}

	for _, change := range []string{"disable", "remove"} {
		stderr := run("", "account", change, "--name", "ana")
		// login may issue tokens until it reads the published list.
		if !refused(time.Now().Add(disabledAhead - time.Minute)) {
			t.Fatalf("account %s: a token issued while login still has the old list would be accepted", change)
		}
		if !strings.Contains(stderr, "secret push") {
			t.Errorf("account %s does not say to publish the list at once:\n%s", change, stderr)
		}
		back := "enable"
		if change == "remove" {
			back = "add"
		}
		during := time.Now()
		run("una contraseña larga\n", "account", back, "--name", "ana")
		if refused(time.Now().Add(2 * time.Second)) {
			t.Fatalf("account %s after %s: new sessions are still refused", back, change)
		}
		if !refused(during) {
			t.Fatalf("account %s after %s: a session opened while the account was out is accepted", back, change)
		}
	}
}

func TestAccount_MemoryStoreSaysHowToEndSessions(t *testing.T) {
	t.Setenv("STATE_STORE", "memory")
	dir := t.TempDir()
	if _, err := admin(t, dir, "una contraseña larga\n", "account", "add", "--name", "ana"); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := adminStreams(t, dir, "", "account", "disable", "--name", "ana")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"/Login/revoke", "subject=ana", "session-admin", "STATE_STORE=firestore"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not say %q:\n%s", want, stderr)
		}
	}
	if a, _, _ := readAccounts(t, dir).Lookup("ana"); !a.Disabled {
		t.Fatal("the account was not disabled")
	}
}

func TestAccount_UnreachableStoreChangesNothing(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := lis.Addr().String()
	lis.Close()
	dir := t.TempDir()
	t.Setenv("STATE_STORE", "memory")
	if _, err := admin(t, dir, "una contraseña larga\n", "account", "add", "--name", "ana"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("STATE_STORE", "firestore")
	t.Setenv("GOOGLE_CLOUD_PROJECT", "impo-test")
	t.Setenv("FIRESTORE_EMULATOR_HOST", closed)
	t.Setenv("STATE_STORE_TIMEOUT", "500ms")
	_, err = admin(t, dir, "", "account", "disable", "--name", "ana")
	if err == nil || !strings.Contains(err.Error(), "no se cambió nada") {
		t.Fatalf("disable with the store unreachable: %v; want an error saying nothing changed", err)
	}
	if a, _, _ := readAccounts(t, dir).Lookup("ana"); a.Disabled {
		t.Fatal("the account changed although its sessions could not be ended: a remove that failed so could not be run again")
	}
}
