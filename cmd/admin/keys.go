package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
)

// The signing keys' rotation: keys add puts a new key last, where it only
// verifies; keys promote moves it first, where it signs; keys retire drops
// the old one once no token it signed can be alive. Each algorithm
// rotates on its own (--alg, EdDSA unless said): the set's first Ed25519
// key signs session tokens, and a P-256 key signs ES256 once in front of
// it (session.ParseKeySet), so promote puts an ES256 key at the very
// front and an EdDSA key just where the EdDSA signer stands, behind any
// ES256 signer. The set records when
// each key was last published where login reads it (session.Published):
// keys add writes the folder that a local login reads, secret push writes
// Secret Manager. keys promote refuses to make a key sign before
// rotationWait has passed since then.

// readKeys reads the key file: its keys in order, its record of when
// each was published, and the set as login reads it (which key signs).
func (t *tool) readKeys() ([]jose.JSONWebKey, session.Published, *session.KeySet, error) {
	data, err := t.dir.Secret(context.Background(), t.keysID)
	if err != nil {
		return nil, nil, nil, err
	}
	ks, err := checkKeySet(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", t.path(t.keysID), err)
	}
	pub, err := session.ReadPublished(data)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", t.path(t.keysID), err)
	}
	var set jose.JSONWebKeySet
	err = json.Unmarshal(data, &set)
	return set.Keys, pub, ks, err
}

// checkKeySet is session.ParseKeySet, with what the operator should do
// about a key whose halves do not match: login would sign tokens that no
// verifier accepts.
func checkKeySet(data []byte) (*session.KeySet, error) {
	ks, err := session.ParseKeySet(data)
	if errors.Is(err, session.ErrKeyMismatch) {
		return nil, fmt.Errorf("%w\nla clave privada (d) no corresponde a la pública (x, o x e y en P-256): con ella login firmaría tokens que ningún verificador acepta; restaure el archivo o quite esa clave y cree otra con keys add", err)
	}
	return ks, err
}

// algFlag is the --alg flag of the key commands: the algorithm whose
// keys they rotate.
func algFlag(fs *flag.FlagSet) *string {
	return fs.String("alg", string(jose.EdDSA), "algoritmo de las claves: EdDSA (tokens de sesión) o ES256 (tokens de ID, consumidores sin EdDSA)")
}

func checkAlg(name string) (jose.SignatureAlgorithm, error) {
	alg := jose.SignatureAlgorithm(name)
	if !slices.Contains(session.KeyAlgorithms, alg) {
		return "", fmt.Errorf("--alg %q: use EdDSA o ES256", name)
	}
	return alg, nil
}

// keysFlags parses a key command's flags; fs has its own flags already.
func (t *tool) keysFlags(fs *flag.FlagSet, args []string) (jose.SignatureAlgorithm, error) {
	fs.SetOutput(t.err)
	alg := algFlag(fs)
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("%s: argumento de más %q", fs.Name(), fs.Arg(0))
	}
	return checkAlg(*alg)
}

func (t *tool) writeKeys(keys []jose.JSONWebKey, pub session.Published) error {
	data, err := session.MarshalKeySetPublished(keys, pub)
	if err != nil {
		return err
	}
	ks, err := session.ParseKeySet(data)
	if err != nil {
		return err
	}
	if err := t.dir.Write(t.keysID, data); err != nil {
		return err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.KeyID
		if alg := session.KeyAlgorithm(k); alg != jose.EdDSA {
			ids[i] += " (" + string(alg) + ")"
		}
	}
	signers := "firma " + ks.SigningKeyID(jose.EdDSA)
	if es := ks.SigningKeyID(jose.ES256); es != "" {
		signers += ", y ES256 " + es
	}
	fmt.Fprintf(t.err, "%s: %d clave(s), %s; todas: %s\n", t.path(t.keysID), len(keys), signers, strings.Join(ids, ", "))
	return nil
}

// rotationWait is how long after a key set reaches login's secret a
// verifier may still hold the set before it, each cache in the chain
// adding its own age: login's secrets cache (SECRETS_CACHE_TTL) serves
// /jwks, an HTTP cache may keep that answer for its max-age
// (session.JWKSMaxAge), and the verifier keeps what it read for
// SESSION_JWKS_TTL. The TTLs are read from this shell's environment,
// defaulting to what the deployed functions use (Secret Manager's 5 min,
// not a local folder's 2 s): an operator who changed them there sets them
// here too. why names each term, for the operator.
func rotationWait() (wait time.Duration, why string, err error) {
	secretsTTL, err := secrets.TTLFromEnv(secrets.DefaultTTL)
	if err != nil {
		return 0, "", err
	}
	scfg, err := session.ConfigFromEnv(false)
	if err != nil {
		return 0, "", err
	}
	wait = secretsTTL + session.JWKSMaxAge + scfg.JWKSTTL
	why = fmt.Sprintf("SECRETS_CACHE_TTL de login %s + max-age del JWKS de login %s + SESSION_JWKS_TTL de los verificadores %s",
		short(secretsTTL), short(session.JWKSMaxAge), short(scfg.JWKSTTL))
	return wait, why, nil
}

// short writes 15m rather than 15m0s.
func short(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func stamp(at time.Time) string { return at.UTC().Format(time.RFC3339) }

func (t *tool) keysInit() error {
	if _, err := os.Stat(t.path(t.keysID)); err == nil {
		return fmt.Errorf("%s ya existe: para rotar la clave, use keys add, keys promote y keys retire", t.path(t.keysID))
	}
	k, err := session.NewKey()
	if err != nil {
		return err
	}
	return t.writeKeys([]jose.JSONWebKey{k}, session.Published{k.KeyID: t.now()})
}

// keysAdd appends a new key, which verifies and does not sign yet, and
// records it as published now: the folder is what a local login reads.
// For Secret Manager, secret push records the time again.
func (t *tool) keysAdd(args []string) error {
	alg, err := t.keysFlags(flag.NewFlagSet("keys add", flag.ContinueOnError), args)
	if err != nil {
		return err
	}
	keys, pub, _, err := t.readKeys()
	if err != nil {
		return err
	}
	k, err := session.NewKeyFor(alg)
	if err != nil {
		return err
	}
	now := t.now()
	pub[k.KeyID] = now
	if err := t.writeKeys(append(keys, k), pub); err != nil {
		return err
	}
	if wait, why, err := rotationWait(); err == nil {
		promote := "keys promote"
		if alg != jose.EdDSA {
			promote += " --alg " + string(alg)
		}
		fmt.Fprintf(t.err, "publique el archivo (secret push --secret %s) y espere %s (%s) antes de %s\n", t.keysID, short(wait), why, promote)
	}
	return nil
}

// keysPromote moves the last key of an algorithm to where it signs; but
// not before every verifier can know it. A verifier whose cached set
// lacks the signing key refuses every token login issues (401) until its
// caches expire.
func (t *tool) keysPromote(args []string) error {
	fs := flag.NewFlagSet("keys promote", flag.ContinueOnError)
	force := fs.Bool("force", false, "promueve sin esperar a que todo verificador conozca la clave (algunos rechazarán tokens válidos)")
	alg, err := t.keysFlags(fs, args)
	if err != nil {
		return err
	}
	keys, pub, ks, err := t.readKeys()
	if err != nil {
		return err
	}
	of := func(k jose.JSONWebKey) bool { return session.KeyAlgorithm(k) == alg }
	li := -1 // the last key of alg: the one keys add put there
	for i, k := range keys {
		if of(k) {
			li = i
		}
	}
	if li < 0 {
		return fmt.Errorf("no hay claves %s: agregue una con keys add --alg %s", alg, alg)
	}
	last := keys[li]
	if last.KeyID == ks.SigningKeyID(alg) {
		return fmt.Errorf("la última clave %s, %s, ya firma: agregue otra con %s", alg, last.KeyID, addCommand(alg))
	}
	wait, why, err := rotationWait()
	if err != nil {
		return err
	}
	now := t.now()
	since, known := pub[last.KeyID]
	ready := since.Add(wait)
	switch {
	case known && !now.Before(ready):
	case !known && !*force:
		return fmt.Errorf("no consta cuándo se publicó la clave %s: publique el archivo (secret push --secret %s), espere %s (%s) y vuelva a intentarlo, o use --force",
			last.KeyID, t.keysID, short(wait), why)
	case !*force:
		return fmt.Errorf("la clave %s se publicó el %s: hasta %s después, un verificador puede tener todavía el conjunto anterior (%s = %s) y rechazaría los tokens que ella firme; vuelva a intentarlo desde %s, o use --force",
			last.KeyID, stamp(since), short(wait), why, short(wait), stamp(ready))
	default:
		until := "hasta " + short(wait) + " después de publicar el resultado"
		if known {
			until = "hasta " + stamp(ready)
		}
		fmt.Fprintf(t.err, "ATENCIÓN: --force: la clave %s firmará sin que conste que todo verificador la conozca; %s, un verificador con el conjunto anterior en caché rechazará (401) los tokens que ella firme\n",
			last.KeyID, until)
	}
	// An ES256 key signs at the very front; an EdDSA key where the
	// EdDSA signer stands, so that an ES256 signer in front of it stays
	// in front (session.ParseKeySet).
	rest := slices.Delete(slices.Clone(keys), li, li+1)
	at := 0
	if alg == jose.EdDSA {
		at = slices.IndexFunc(rest, of)
	}
	return t.writeKeys(slices.Insert(rest, at, last), pub)
}

// addCommand is the command that adds a key of alg.
func addCommand(alg jose.SignatureAlgorithm) string {
	if alg == jose.EdDSA {
		return "keys add"
	}
	return "keys add --alg " + string(alg)
}

// keysRetire keeps the first --keep keys of an algorithm (the signer
// first) and every key of the other. EdDSA keeps at least one: login
// signs every session token with it. ES256 may keep none.
func (t *tool) keysRetire(args []string) error {
	fs := flag.NewFlagSet("keys retire", flag.ContinueOnError)
	keep := fs.Int("keep", 1, "claves del algoritmo a conservar (las primeras)")
	alg, err := t.keysFlags(fs, args)
	if err != nil {
		return err
	}
	keys, pub, _, err := t.readKeys()
	if err != nil {
		return err
	}
	of := func(k jose.JSONWebKey) bool { return session.KeyAlgorithm(k) == alg }
	n := 0
	for _, k := range keys {
		if of(k) {
			n++
		}
	}
	least := 0
	if alg == jose.EdDSA {
		least = 1
	}
	switch {
	case n == 0:
		return fmt.Errorf("no hay claves %s", alg)
	case *keep < least || *keep > n:
		return fmt.Errorf("--keep debe estar entre %d y %d (las claves %s del archivo)", least, n, alg)
	}
	var kept []jose.JSONWebKey
	seen := 0
	for _, k := range keys {
		if of(k) {
			if seen++; seen > *keep {
				continue
			}
		}
		kept = append(kept, k)
	}
	return t.writeKeys(kept, pub)
}

// stampPublished returns the key set data with every key recorded as
// published at at.
func stampPublished(data []byte, at time.Time) ([]byte, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, err
	}
	pub := session.Published{}
	for _, k := range set.Keys {
		pub[k.KeyID] = at
	}
	return session.MarshalKeySetPublished(set.Keys, pub)
}

// recordPublished writes to file, after a push of data to Secret
// Manager, the set with every key recorded as published now: keys promote
// reads the file and waits from then. It runs whether or not the push
// answered success: a push whose answer was lost may have landed, and an
// early record would let a key sign early.
func (t *tool) recordPublished(file string, data []byte) error {
	now := t.now()
	stamped, err := stampPublished(data, now)
	if err == nil {
		err = secrets.WriteFile(file, stamped)
	}
	wait, _, werr := rotationWait()
	if werr != nil {
		return werr
	}
	if err != nil {
		return fmt.Errorf("no se pudo registrar en %s cuándo se publicó: %w; no use keys promote antes de %s", file, err, stamp(now.Add(wait)))
	}
	fmt.Fprintf(t.err, "%s: publicado el %s; keys promote, desde %s\n", file, stamp(now), stamp(now.Add(wait)))
	return nil
}
