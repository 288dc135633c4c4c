package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

// disabledAhead is how far ahead disabling or removing an account refuses
// its tokens: login instances keep issuing them until they read the
// published accounts list (after secret push, within SECRETS_CACHE_TTL),
// and whoever holds the password must not get a session meanwhile. 12 h,
// the longest SESSION_TTL, leaves the operator ample time to publish;
// enabling or adding the account again brings the mark back to now.
const disabledAhead = session.MaxLifetime

// sessions applies what an account change does to the account's open
// sessions, in the state store the environment names (store.ConfigFromEnv,
// the sessions database): disable and remove end them, and refuse those
// issued for disabledAhead; a new password or secret ends them; enable
// and add let new ones through at once. It runs before the accounts file
// is written, so that a failure changes nothing and the command can be
// run again.
func (t *tool) sessions(change, name string, newSecret bool) error {
	now := time.Now()
	var apply func(context.Context, session.Revocations) error
	switch {
	case change == "disable" || change == "remove":
		apply = func(ctx context.Context, r session.Revocations) error {
			return r.EndSessions(ctx, name, now.Add(disabledAhead))
		}
	case change == "update" && newSecret:
		apply = func(ctx context.Context, r session.Revocations) error { return r.EndSessions(ctx, name, now) }
	case change == "enable" || change == "add":
		apply = func(ctx context.Context, r session.Revocations) error { return r.ReopenSessions(ctx, name, now) }
	default:
		return nil
	}
	ending := change != "enable" && change != "add"

	cfg, err := store.ConfigFromEnv()
	if err != nil {
		return fmt.Errorf("almacén de estado: %w", err)
	}
	if !cfg.Shared() {
		if ending {
			// The local run's memory store lives inside cmd/local: only a
			// request to that process reaches it.
			fmt.Fprintf(t.err, `STATE_STORE=memory: este comando no alcanza el almacén en memoria, que vive dentro de
cmd/local, así que las sesiones abiertas de %[1]s siguen valiendo hasta que venzan. Para
cerrarlas ya, una cuenta con el rol session-admin pide a login:
  curl -s "$URL/Login/revoke" -H "Authorization: Bearer $TOKEN" -d subject=%[1]s
En producción, corra este comando con STATE_STORE=firestore, GOOGLE_CLOUD_PROJECT y
FIRESTORE_SESSIONS_DATABASE=sessions: cierra las sesiones él mismo.
`, name)
		}
		return nil
	}

	ctx := context.Background()
	_, sessions, closeStores, err := openStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStores()
	if err := apply(ctx, session.Revocations{Store: sessions}); err != nil {
		return fmt.Errorf("no se cambió nada (ni la lista de cuentas): %w", err)
	}
	switch {
	case change == "update":
		fmt.Fprintf(t.err, "sesiones de %s cerradas: toda instancia rechaza sus tokens anteriores en a lo sumo REVOCATION_CACHE_TTL (10 s por omisión)\n", name)
	case ending:
		fmt.Fprintf(t.err, "sesiones de %s cerradas: toda instancia rechaza sus tokens en a lo sumo REVOCATION_CACHE_TTL (10 s por omisión), "+
			"también los que login emita durante %s mientras no lea la lista publicada: publíquela ya (secret push --secret accounts)\n",
			name, disabledAhead)
	}
	return nil
}

// openStores opens the state stores cfg names (the one login keeps its
// own state in, and the sessions database), and returns how to close them.
func openStores(ctx context.Context, cfg store.Config) (own, sessions store.Store, closeAll func(), err error) {
	own, sessions, err = store.Open(ctx, cfg)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("almacén de estado: %w", err)
	}
	opened := []store.Store{sessions}
	if own != sessions {
		opened = append(opened, own)
	}
	return own, sessions, func() {
		for _, s := range opened {
			if c, ok := s.(io.Closer); ok {
				c.Close()
			}
		}
	}, nil
}
