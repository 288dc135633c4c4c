// Command local serves every function on localhost with the embedded
// defaults, creating dev credentials on a fresh checkout.
//
//	go run ./cmd/local
//
// PORT chooses the port (8080; 0 picks a free one). FUNCTION_TARGET=Login
// serves that one function at "/", through the Functions Framework, as in
// production; otherwise each function is served at /<EntryPoint>/.
//
// SIGTERM or Ctrl-C stops it gracefully in both modes: it refuses new
// connections or requests and lets those in flight finish, for at most
// DRAIN_GRACE, before it exits.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	cloudevents "github.com/cloudevents/sdk-go/v2"

	_ "impo.com.uy/copetes/backend"
	"impo.com.uy/copetes/backend/functions/gettoken"
	"impo.com.uy/copetes/backend/internal/devcreds"
	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/entrypoint"
	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/logging"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "local:", err)
		os.Exit(1)
	}
}

func run() error {
	logging.Setup()
	port := env.String("PORT", "8080")
	// Only this machine may connect: a local run holds dev credentials.
	host := env.String("LOCAL_HOST", "127.0.0.1")

	grace, err := entrypoint.DrainGraceFromEnv()
	if err != nil {
		return err
	}
	devPassword, err := bootstrap()
	if err != nil {
		return err
	}
	if target := os.Getenv("FUNCTION_TARGET"); target != "" {
		// As in production: the framework's server knows no signals, and
		// entrypoint drains and exits on SIGTERM by itself.
		slog.Info("serving one function through the Functions Framework", "function", target, "address", net.JoinHostPort(host, port))
		return funcframework.StartHostPort(host, port)
	}
	entrypoint.CallerHandlesShutdown()

	mux := http.NewServeMux()
	var names []string
	for _, fn := range entrypoint.HTTPFunctions() {
		prefix := "/" + fn.Name
		mux.Handle(prefix+"/", http.StripPrefix(prefix, fn.Handler))
		mux.Handle(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r.URL.Path = "/"
			fn.Handler(w, r)
		}))
		names = append(names, fn.Name)
	}
	for _, fn := range entrypoint.CloudEventFunctions() {
		h, err := cloudEventHandler(fn)
		if err != nil {
			return err
		}
		prefix := "/" + fn.Name
		mux.Handle(prefix, h)
		mux.Handle(prefix+"/", h)
		names = append(names, fn.Name)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	base := "http://" + lis.Addr().String()
	slog.Info("serving functions", "address", base, "functions", names)
	fmt.Fprintf(os.Stderr, "\nFunciones en %s: %s\n%s\n", base, strings.Join(names, ", "), tryLines(base, devPassword))

	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	select {
	case err := <-served:
		return err // the listener failed: Shutdown has not been called
	case <-ctx.Done():
	}
	stop() // a second Ctrl-C takes its default action: the process ends at once
	drain(srv, grace, served)
	return nil
}

// drain stops srv and waits, for at most grace, until the requests in
// flight have their answers: Serve returns as soon as Shutdown starts,
// and a process that exited then would cut them.
func drain(srv *http.Server, grace time.Duration, served <-chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	drained := make(chan struct{})
	// Shutdown runs this once it has closed the listener: when the log
	// says "draining started", new connections are refused, and a request
	// that still comes on an open connection is refused by entrypoint.
	srv.RegisterOnShutdown(func() {
		entrypoint.Drain(ctx) // logs what it cut, if the grace runs out
		close(drained)
	})
	if err := srv.Shutdown(ctx); err != nil {
		srv.Close() // the grace ran out: the log says what this cuts
	}
	<-drained
	<-served
}

// cloudEventHandler serves a CloudEvent function over HTTP, in binary and
// structured modes, as the Functions Framework does: an error from the
// function is a 500, which Eventarc retries. Like the framework, it also
// takes a Pub/Sub push body ({"message":{…},"subscription":…}, no ce-
// headers) and makes it a messagePublished event (funcframework's
// convertBackgroundToCloudEvent): the id and time are the message's, the
// topic is a projects/P/topics/T in the path, if any. Unlike the
// framework, it keeps the message's orderingKey.
func cloudEventHandler(fn entrypoint.EventFunction) (http.Handler, error) {
	p, err := cloudevents.NewHTTP()
	if err != nil {
		return nil, err
	}
	h, err := cloudevents.NewHTTPReceiveHandler(context.Background(), p, func(ctx context.Context, e cloudevents.Event) (err error) {
		defer func() {
			if v := recover(); v != nil {
				slog.ErrorContext(ctx, "panic in a CloudEvent function", "function", fn.Name, "panic", fmt.Sprint(v))
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return fn.Fn(ctx, e)
	})
	if err != nil {
		return nil, err
	}
	topicInPath := regexp.MustCompile(`projects/[^/?]+/topics/[^/?]+`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Ce-Id") != "" || strings.Contains(r.Header.Get("Content-Type"), "cloudevents") {
			h.ServeHTTP(w, r)
			return
		}
		var push struct {
			Message *struct {
				ID          string            `json:"messageId"`
				Data        []byte            `json:"data"`
				Attributes  map[string]string `json:"attributes"`
				PublishTime time.Time         `json:"publishTime"`
				OrderingKey string            `json:"orderingKey,omitempty"`
			} `json:"message"`
			Subscription string `json:"subscription"`
		}
		body, err := io.ReadAll(r.Body)
		if err == nil {
			err = json.Unmarshal(body, &push)
		}
		if err != nil || push.Message == nil {
			http.Error(w, "neither a CloudEvent nor a Pub/Sub push body", http.StatusBadRequest)
			return
		}
		m := push.Message
		if m.PublishTime.IsZero() {
			m.PublishTime = time.Now()
		}
		e, _ := json.Marshal(map[string]any{
			"specversion": "1.0", "id": m.ID, "time": m.PublishTime, "datacontenttype": "application/json",
			"type": "google.cloud.pubsub.topic.v1.messagePublished", "source": "//pubsub.googleapis.com/" + topicInPath.FindString(r.URL.Path),
			"data": map[string]any{"message": m, "subscription": push.Subscription},
		})
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(e)), int64(len(e))
		r.Header.Set("Content-Type", "application/cloudevents+json")
		h.ServeHTTP(w, r)
	}), nil
}

// bootstrap creates dev credentials when secrets come from the credentials
// folder (never when they come from Secret Manager), and returns the dev
// password when it made one. The secrets' names are the ones the
// functions will read: each is asked of the package that reads it.
func bootstrap() (string, error) {
	sc, err := secrets.ConfigFromEnv()
	if err != nil || sc.Kind != secrets.KindDir {
		return "", err
	}
	made, err := devcreds.Bootstrap(sc.Dir, devcreds.IDs{
		Keys:        session.KeysSecretFromEnv(),
		Accounts:    accounts.SecretFromEnv(),
		GetTokenKey: gettoken.KeySecretFromEnv(),
		Policy:      gettoken.PolicySecretFromEnv(),
		Clients:     clients.SecretFromEnv(),
	})
	if err != nil {
		return "", fmt.Errorf("dev credentials in %s: %w", sc.Dir, err)
	}
	if len(made.Files) > 0 {
		slog.Info("created dev credentials", "dir", sc.Dir, "secrets", made.Files)
	}
	if made.DevPassword != "" {
		// Shown once, on the terminal, never in a log line.
		fmt.Fprintf(os.Stderr, "\nCuenta de desarrollo creada en %s/: usuario %q, contraseña %s\n(se muestra una sola vez; para otra, borre el archivo accounts o use cmd/admin)\n",
			sc.Dir, devcreds.DevAccount, made.DevPassword)
	}
	return made.DevPassword, nil
}

func tryLines(base, devPassword string) string {
	if devPassword == "" {
		devPassword = "<contraseña>"
	}
	return fmt.Sprintf(`Pruebe:
  TOKEN=$(curl -s %[1]s/Login/token -H 'Content-Type: application/json' \
    -d '{"client_id":"impo-web-dev","username":"dev","password":"%[2]s"}' | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s %[1]s/Login/jwks
  curl -s %[1]s/Login/introspect -H "Authorization: Bearer $TOKEN" --data-urlencode "token=$TOKEN"
  curl -s %[1]s/GetToken -H "Authorization: Bearer $TOKEN" \
    -H 'Content-Type: application/json' -d '{"scopes":["https://www.googleapis.com/auth/cloud-platform"]}'
  curl -s %[1]s/ValidateHTTP -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"document_id":"ley-1","type":"ley","number":"1","date":"2023-02-30","text":"Artículo único."}'
`, base, devPassword)
}
