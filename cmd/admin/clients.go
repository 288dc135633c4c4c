package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/secrets"
)

// defaultGrants are a browser client's: the code flow and its renewal.
// The password grant is never a default (RFC 9700 §2.4).
const defaultGrants = "authorization_code,refresh_token"

func (t *tool) readClients() ([]clients.Client, error) {
	data, err := t.dir.Secret(context.Background(), t.clientsID)
	if errors.Is(err, secrets.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return clients.Unmarshal(data)
}

// One name, one caller. A client id that is also an account name would
// make one name mean two callers: in a session's sub (the account) and
// aud or client_id (the client), in the logs, and at the token endpoint,
// where a service authenticates by its name as client_id. add and update
// refuse to make or keep such a pair. A pair that an older version or a
// hand-edited file left can still be undone: remove works, and so do
// account disable and enable (a compromised account must be stoppable at
// once), with a warning.

// checkNotAClient refuses an account add or update whose name is a
// registered client's id, and warns of one on disable or enable.
func (t *tool) checkNotAClient(sub, name string) error {
	if sub == "remove" {
		return nil
	}
	refuse := sub == "add" || sub == "update"
	cs, err := t.readClients()
	if err != nil && !refuse {
		return nil // a broken clients file must not keep an account from being disabled
	}
	if err != nil {
		return fmt.Errorf("leer los clientes, para comprobar que %q no es un client_id: %w", name, err)
	}
	if !slices.ContainsFunc(cs, func(c clients.Client) bool { return c.ID == name }) {
		return nil
	}
	if refuse {
		return fmt.Errorf("%q ya es el client_id de un cliente registrado: un nombre nombraría a dos en los tokens y los logs; elija otro nombre de cuenta (o quite el cliente: client remove)", name)
	}
	fmt.Fprintf(t.err, "aviso: %q es también el client_id de un cliente registrado: quite uno de los dos (account remove o client remove)\n", name)
	return nil
}

// checkNotAnAccount refuses a client add or update whose id is an
// account's name.
func (t *tool) checkNotAnAccount(sub, id string) error {
	if sub == "remove" {
		return nil
	}
	accts, err := t.readAccounts()
	if err != nil {
		return fmt.Errorf("leer las cuentas, para comprobar que %q no es el nombre de una cuenta: %w", id, err)
	}
	if slices.ContainsFunc(accts, func(a accounts.Account) bool { return a.Name == id }) {
		return fmt.Errorf("%q ya es el nombre de una cuenta: un nombre nombraría a dos en los tokens y los logs; elija otro client_id (o quite la cuenta: account remove)", id)
	}
	return nil
}

// splitList splits a comma-separated flag value, dropping blanks: "" is
// the empty list, which is how update clears one.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// client adds, changes, removes or lists the registered browser clients.
// update replaces only the lists whose flags are given.
func (t *tool) client(sub string, args []string) error {
	fs := flag.NewFlagSet("client "+sub, flag.ContinueOnError)
	fs.SetOutput(t.err)
	id := fs.String("id", "", "client_id de la aplicación")
	name := fs.String("name", "", "nombre que ve la persona en la página de inicio de sesión")
	redirects := fs.String("redirect-uris", "", "URIs de redirección exactas, separadas por comas")
	origins := fs.String("origins", "", "orígenes del navegador (scheme://host[:puerto]) para CORS, separados por comas")
	logouts := fs.String("post-logout-uris", "", "URIs exactas a las que volver tras cerrar sesión, separadas por comas")
	grants := fs.String("grants", defaultGrants, "grants permitidos: authorization_code, refresh_token, password")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("argumento de más %q (las listas van separadas por comas, sin espacios sueltos)", fs.Arg(0))
	}
	list, err := t.readClients()
	if err != nil {
		return err
	}
	if sub == "list" {
		dash := func(l []string) string {
			if len(l) == 0 {
				return "-"
			}
			return strings.Join(l, ",")
		}
		for _, c := range list {
			var gs []string
			for _, g := range c.GrantTypes {
				gs = append(gs, string(g))
			}
			fmt.Fprintf(t.out, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, dash(gs), dash(c.RedirectURIs), dash(c.AllowedOrigins),
				dash(c.PostLogoutRedirectURIs), c.Name)
		}
		return nil
	}
	if *id == "" {
		return errors.New("falta --id")
	}
	if err := clients.CheckID(*id); err != nil {
		return err
	}
	i := slices.IndexFunc(list, func(c clients.Client) bool { return c.ID == *id })
	switch {
	case sub == "add" && i >= 0:
		return fmt.Errorf("el cliente %q ya existe: use client update", *id)
	case sub != "add" && i < 0:
		return fmt.Errorf("no existe el cliente %q", *id)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if err := t.checkNotAnAccount(sub, *id); err != nil {
		return err
	}
	switch sub {
	case "add":
		list = append(list, clients.Client{ID: *id, Kind: clients.Public})
		i = len(list) - 1
		set["grants"] = true // the default applies to a new client
		fallthrough
	case "update":
		c := &list[i]
		if set["name"] {
			c.Name = *name
		}
		if set["redirect-uris"] {
			c.RedirectURIs = splitList(*redirects)
		}
		if set["origins"] {
			c.AllowedOrigins = splitList(*origins)
		}
		if set["post-logout-uris"] {
			c.PostLogoutRedirectURIs = splitList(*logouts)
		}
		if set["grants"] {
			c.GrantTypes = nil
			for _, g := range splitList(*grants) {
				c.GrantTypes = append(c.GrantTypes, clients.Grant(g))
			}
		}
		if err := c.Validate(); err != nil {
			return err
		}
		if set["grants"] && c.Allows(clients.Password) {
			fmt.Fprintf(t.err, "aviso: %s puede usar el grant password: la aplicación recibe la contraseña de la persona (RFC 9700 §2.4 lo prohíbe); solo para desarrollo o un cliente que todavía no puede usar la página de inicio de sesión\n", *id)
		}
	case "remove":
		list = slices.Delete(list, i, i+1)
	}
	data, err := clients.Marshal(list)
	if err != nil {
		return err
	}
	if len(data) > secrets.MaxSize {
		return fmt.Errorf("la lista ocuparía %d bytes: Secret Manager admite %d", len(data), secrets.MaxSize)
	}
	if err := t.dir.Write(t.clientsID, data); err != nil {
		return err
	}
	fmt.Fprintf(t.err, "%s: cliente %q (%s); %d cliente(s)\n", t.path(t.clientsID), *id, sub, len(list))
	return nil
}
