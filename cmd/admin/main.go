// Command admin is the operator's tool: signing keys, accounts, registered
// browser clients, password hashes, and pushing a secret file to Secret
// Manager.
//
//	admin keys init
//	admin keys add|promote|retire [--alg EdDSA|ES256] [--force] [--keep N]
//	admin account add --name NAME --roles r1,r2 [--service] [--generate-secret]
//	admin account update --name NAME [--roles r1,r2] [--password]
//	admin account disable|enable|remove|unlock --name NAME
//	admin account list
//	admin client add|update --id ID [--name N] [--redirect-uris u1,u2] [--origins o1] [--post-logout-uris u] [--grants g1,g2]
//	admin client remove --id ID
//	admin client list
//	admin hash
//	admin secret push --secret ID [--file PATH]
//
// Passwords and client secrets are read from standard input (a prompt
// without echo on a terminal, else the first line), never from arguments,
// which other users of the machine can see. Files are the secrets in
// CREDENTIALS_DIR (default credenciales).
//
// Standard output carries only what a script captures — a generated
// secret, a hash, the account list, a published version's name — alone, so
// that SECRETO=$(admin account add … --generate-secret) holds just the
// secret; what is said to the operator goes to standard error.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/authn"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/password"
	"impo.com.uy/copetes/backend/shared/secrets"
	"impo.com.uy/copetes/backend/shared/session"
	"impo.com.uy/copetes/backend/shared/store"
)

const usage = `uso:
  admin keys init                 crea session-keys con una clave EdDSA
  admin keys add                  agrega una clave nueva al final (verifica, no firma)
  admin keys promote [--force]    pasa la última clave al frente (firma desde ya);
                                  se niega si se publicó hace menos de la espera de rotación
  admin keys retire [--keep N]    conserva solo las N primeras claves (1)
                                  add, promote y retire toman --alg EdDSA (por omisión:
                                  tokens de sesión) o --alg ES256 (tokens de ID); cada
                                  algoritmo rota aparte y retire --alg ES256 admite --keep 0
  admin account add --name N --roles r1,r2 [--service] [--generate-secret]
  admin account update --name N [--roles r1,r2] [--password]
  admin account disable|enable|remove --name N
  admin account unlock --name N   levanta el bloqueo de la cuenta (estado en Firestore)
  admin account list              (avisa de hashes más baratos que el actual)
  admin client add --id ID --redirect-uris u1,u2 --origins o1 [--post-logout-uris u]
                  [--name "Nombre"] [--grants authorization_code,refresh_token]
  admin client update --id ID [las mismas opciones: cada una dada reemplaza su lista]
  admin client remove --id ID
  admin client list               id, grants, redirecciones, orígenes, vuelta tras cerrar sesión, nombre
  admin hash                      imprime el hash argon2id (PHC) de la contraseña leída
  admin secret push --secret ID [--file RUTA]

La contraseña o el secreto se leen de la entrada estándar, nunca de los
argumentos: printf '%s\n' "$PASSWORD" | admin account add --name ana --roles editor
Una cuenta de servicio necesita un secreto de 256 bits o más (--generate-secret
lo genera); se guarda como resumen SHA-256 ($sha256$), que se verifica en
microsegundos, y nunca se bloquea por intentos fallidos. Con --generate-secret, la
salida estándar es solo el secreto generado:
  SECRETO=$(admin account add --name pipeline --roles pipeline --service --generate-secret)
Un cliente es una aplicación de navegador (pública: sin secreto, con PKCE); las
URIs se comparan exactas (https, o http solo para 127.0.0.1, [::1] y localhost).
El grant password solo si se lista en --grants: la aplicación vería la contraseña.
`

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "admin:", err)
		os.Exit(1)
	}
}

// tool carries the streams and the folder of secrets.
type tool struct {
	in        io.Reader
	out, err  io.Writer
	dir       secrets.Dir
	keysID    string
	acctsID   string
	clientsID string
	stdinTTY  bool
	now       func() time.Time
}

func run(args []string, in io.Reader, out, errw io.Writer) error {
	return runAt(time.Now, args, in, out, errw)
}

// runAt is run on the clock now: tests move it instead of waiting.
func runAt(now func() time.Time, args []string, in io.Reader, out, errw io.Writer) error {
	// The same names and folder the functions and cmd/local use.
	t := &tool{
		in: in, out: out, err: errw, now: now,
		dir:       secrets.Dir{Path: secrets.DirFromEnv()},
		keysID:    session.KeysSecretFromEnv(),
		acctsID:   accounts.SecretFromEnv(),
		clientsID: clients.SecretFromEnv(),
	}
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		t.stdinTTY = true
	}
	if len(args) < 1 {
		return errors.New("falta el comando\n" + strings.TrimSpace(usage))
	}
	var sub string
	if len(args) > 1 {
		sub = args[1]
	}
	rest := args[min(len(args), 2):]
	switch args[0] + " " + sub {
	case "keys init":
		return t.keysInit()
	case "keys add":
		return t.keysAdd(rest)
	case "keys promote":
		return t.keysPromote(rest)
	case "keys retire":
		return t.keysRetire(rest)
	case "account unlock":
		return t.unlock(rest)
	case "account add", "account update", "account disable", "account enable", "account remove", "account list":
		return t.account(sub, rest)
	case "client add", "client update", "client remove", "client list":
		return t.client(sub, rest)
	case "secret push":
		return t.secretPush(rest)
	}
	if args[0] == "hash" {
		pw, err := t.readSecret("Contraseña: ")
		if err != nil {
			return err
		}
		h, err := password.Hash(pw, password.Default)
		if err != nil {
			return err
		}
		fmt.Fprintln(t.out, h)
		return nil
	}
	return fmt.Errorf("comando desconocido %q\n%s", strings.Join(args, " "), usage)
}

// readSecret reads a password: with a prompt and no echo on a terminal
// (asked twice), else the first line of standard input.
func (t *tool) readSecret(prompt string) ([]byte, error) {
	var pw []byte
	if t.stdinTTY {
		fd := int(t.in.(*os.File).Fd())
		fmt.Fprint(t.err, prompt)
		first, err := term.ReadPassword(fd)
		fmt.Fprintln(t.err)
		if err != nil {
			return nil, err
		}
		fmt.Fprint(t.err, "Repita: ")
		again, err := term.ReadPassword(fd)
		fmt.Fprintln(t.err)
		if err != nil {
			return nil, err
		}
		if string(first) != string(again) {
			return nil, errors.New("las contraseñas no coinciden")
		}
		pw = first
	} else {
		line, err := bufio.NewReader(io.LimitReader(t.in, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	return pw, checkPassword(pw)
}

// checkPassword applies NIST SP 800-63B's length rules: at least 12
// characters here, and a ceiling that keeps requests small.
func checkPassword(pw []byte) error {
	n := utf8.RuneCount(pw)
	switch {
	case !utf8.Valid(pw):
		return errors.New("la contraseña no es UTF-8 válido")
	case n < 12:
		return fmt.Errorf("la contraseña tiene %d caracteres; el mínimo es 12", n)
	case len(pw) > 1024:
		return errors.New("la contraseña supera 1024 bytes")
	}
	return nil
}

func (t *tool) path(id string) string { return filepath.Join(t.dir.Path, id) }

func (t *tool) readAccounts() ([]accounts.Account, error) {
	data, err := t.dir.Secret(context.Background(), t.acctsID)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return accounts.Unmarshal(data)
}

func (t *tool) account(sub string, args []string) error {
	fs := flag.NewFlagSet("account "+sub, flag.ContinueOnError)
	fs.SetOutput(t.err)
	name := fs.String("name", "", "nombre de la cuenta")
	roles := fs.String("roles", "", "roles separados por comas")
	service := fs.Bool("service", false, "cuenta de servicio (client credentials)")
	generate := fs.Bool("generate-secret", false, "genera el secreto y lo imprime una vez")
	newPassword := fs.Bool("password", false, "cambia la contraseña (leída de la entrada estándar)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	list, err := t.readAccounts()
	if err != nil {
		return err
	}
	if sub == "list" {
		for _, a := range list {
			state := ""
			if a.Disabled {
				state = " (deshabilitada)"
			}
			fmt.Fprintf(t.out, "%s\t%s\t%s%s\n", a.Name, a.Kind, strings.Join(a.Roles, ","), state)
			h, err := password.Parse(a.Hash)
			if err != nil || h.Fast() {
				continue
			}
			if a.Kind == accounts.Service {
				// A service's secret needs no slow hash (see
				// password.HashSecret): rotating it stores the digest,
				// and spares every token request an argon2id hash.
				fmt.Fprintf(t.err, "aviso: el secreto de %s se guarda con argon2id (formato anterior): cada token le cuesta un hash lento; rótelo con account update --name %s --generate-secret para guardarlo como $sha256$\n",
					a.Name, a.Name)
				continue
			}
			if h.Params != password.Default {
				// Unknown names are checked at the costliest hash's cost:
				// one hash at other parameters makes the others, or itself,
				// answer at a telling speed.
				fmt.Fprintf(t.err, "aviso: el hash de %s usa otros parámetros que el actual (m=%d, t=%d, p=%d): su tiempo de respuesta lo distingue; renuévelo con account update --name %s --password\n",
					a.Name, h.Params.Memory, h.Params.Time, h.Params.Threads, a.Name)
			}
		}
		return nil
	}
	n := accounts.NormalizeName(*name)
	if n == "" {
		return errors.New("falta --name")
	}
	if err := accounts.CheckName(n); err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(a accounts.Account) bool { return a.Name == n })
	switch {
	case sub == "add" && i >= 0:
		return fmt.Errorf("la cuenta %q ya existe: use account update", n)
	case sub != "add" && i < 0:
		return fmt.Errorf("no existe la cuenta %q", n)
	}
	if err := t.checkNotAClient(sub, n); err != nil {
		return err
	}

	var roleList []string
	for r := range strings.SplitSeq(*roles, ",") {
		if r = strings.TrimSpace(r); r != "" {
			roleList = append(roleList, r)
		}
	}
	var generated string // shown once, after the list is saved
	setSecret := func(a *accounts.Account) error {
		var pw []byte
		if *generate {
			generated = accounts.NewServiceSecret()
			pw = []byte(generated)
		} else if pw, err = t.readSecret("Contraseña de " + n + ": "); err != nil {
			return err
		}
		if a.Kind == accounts.Service {
			// A service is never locked by failed guesses: its secret
			// must be one nobody can guess. Being unguessable, it is
			// stored as a fast digest, checked at machine speed; this
			// is also how an old argon2id entry moves to the digest.
			if err := accounts.CheckServiceSecret(string(pw)); err != nil {
				return fmt.Errorf("%w: use --generate-secret", err)
			}
			a.Hash = password.HashSecret(pw)
			return nil
		}
		a.Hash, err = password.Hash(pw, password.Default)
		return err
	}

	switch sub {
	case "add":
		a := accounts.Account{Name: n, Kind: accounts.User, Roles: roleList}
		if *service {
			a.Kind = accounts.Service
		}
		if err := setSecret(&a); err != nil {
			return err
		}
		list = append(list, a)
	case "update":
		if *roles != "" {
			list[i].Roles = roleList
		}
		if *newPassword || *generate {
			if err := setSecret(&list[i]); err != nil {
				return err
			}
		}
	case "disable", "enable":
		list[i].Disabled = sub == "disable"
	case "remove":
		list = slices.Delete(list, i, i+1)
	}
	data, err := accounts.Marshal(list)
	if err != nil {
		return err
	}
	if len(data) > secrets.MaxSize {
		return fmt.Errorf("la lista ocuparía %d bytes: Secret Manager admite %d", len(data), secrets.MaxSize)
	}
	if err := t.sessions(sub, n, *newPassword || *generate); err != nil {
		return err
	}
	if err := t.dir.Write(t.acctsID, data); err != nil {
		return err
	}
	fmt.Fprintf(t.err, "%s: cuenta %q (%s); %d cuenta(s)\n", t.path(t.acctsID), n, sub, len(list))
	if generated != "" {
		// The secret alone on stdout, so that SECRETO=$(…) captures exactly it.
		fmt.Fprintf(t.err, "secreto de %s generado: se muestra una sola vez, en la salida estándar\n", n)
		fmt.Fprintln(t.out, generated)
	}
	return nil
}

// secretPush adds a file as the new latest version of a Secret Manager
// secret (the secret must exist: deploy.sh setup creates it).
func (t *tool) secretPush(args []string) error {
	fs := flag.NewFlagSet("secret push", flag.ContinueOnError)
	fs.SetOutput(t.err)
	id := fs.String("secret", "", "id del secreto")
	file := fs.String("file", "", "archivo (por omisión CREDENTIALS_DIR/<id>)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id == "" {
		return errors.New("falta --secret")
	}
	if *file == "" {
		*file = t.path(*id)
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	// Refuse to publish a file that the functions would reject. The key
	// set is checked under its default id too, in case this shell lacks the
	// SESSION_KEYS_SECRET the functions run with.
	keys := false
	switch *id {
	case t.keysID, session.DefaultKeysSecret:
		keys = true
		if _, err = checkKeySet(data); err == nil {
			data, err = stampPublished(data, t.now())
		}
	case t.acctsID:
		_, err = accounts.Parse(data)
	case t.clientsID:
		_, err = clients.Parse(data)
	}
	if err != nil {
		return fmt.Errorf("%s no es válido: %w", *file, err)
	}
	project := env.String("GOOGLE_CLOUD_PROJECT", "")
	if project == "" {
		return errors.New("defina GOOGLE_CLOUD_PROJECT")
	}
	ctx := context.Background()
	sm, err := secrets.NewSecretManager(ctx, project, env.String("SECRETMANAGER_EMULATOR_HOST", ""))
	if err != nil {
		return err
	}
	defer sm.Close()
	name, err := sm.AddVersion(ctx, *id, data)
	if keys {
		err = errors.Join(err, t.recordPublished(*file, data))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(t.err, "publicado %s como versión nueva de %s\n", *file, *id)
	fmt.Fprintln(t.out, name)
	return nil
}

// unlock lifts an account-wide lock-out in the state store the
// environment names (Firestore in production: FIRESTORE_DATABASE is
// login's database). A local run keeps its state in cmd/local's memory,
// out of this command's reach.
func (t *tool) unlock(args []string) error {
	fs := flag.NewFlagSet("account unlock", flag.ContinueOnError)
	fs.SetOutput(t.err)
	name := fs.String("name", "", "nombre de la cuenta")
	if err := fs.Parse(args); err != nil {
		return err
	}
	n := accounts.NormalizeName(*name)
	if n == "" {
		return errors.New("falta --name")
	}
	cfg, err := store.ConfigFromEnv()
	if err != nil {
		return err
	}
	if !cfg.Shared() {
		return fmt.Errorf("STATE_STORE=memory: los bloqueos de la corrida local viven en la memoria de cmd/local; reinícielo para borrarlos, o defina STATE_STORE=firestore (y FIRESTORE_DATABASE, la base de login) para desbloquear en producción")
	}
	ctx := context.Background()
	own, _, closeStores, err := openStores(ctx, cfg)
	if err != nil {
		return err
	}
	defer closeStores()
	if err := authn.Unlock(ctx, lockout.Guard{Store: own, Now: time.Now}, n); err != nil {
		return fmt.Errorf("desbloquear %s: %w", n, err)
	}
	fmt.Fprintf(t.err, "cuenta %q desbloqueada: sus fallos se olvidaron\n", n)
	return nil
}
