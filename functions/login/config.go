package login

import (
	"fmt"
	"runtime"
	"time"

	"impo.com.uy/copetes/backend/shared/accounts"
	"impo.com.uy/copetes/backend/shared/clients"
	"impo.com.uy/copetes/backend/shared/env"
	"impo.com.uy/copetes/backend/shared/lockout"
	"impo.com.uy/copetes/backend/shared/memlimit"
	"impo.com.uy/copetes/backend/shared/password"
)

// config is login's own configuration; the session settings it shares with
// the other functions live in session.Config.
type config struct {
	AccountsSecret  string          // ACCOUNTS_SECRET
	ClientsSecret   string          // CLIENTS_SECRET: the registered browser applications
	RefreshIdle     time.Duration   // LOGIN_REFRESH_IDLE: a refresh family unused this long ends
	RefreshMax      time.Duration   // LOGIN_REFRESH_MAX: a refresh family ends this long after the login
	PerPair         lockout.Policy  // LOGIN_MAX_FAILURES (one account from one address), LOGIN_FAILURE_WINDOW, LOGIN_LOCKOUT_BASE, LOGIN_LOCKOUT_MAX
	PerAccount      lockout.Policy  // LOGIN_MAX_FAILURES_PER_ACCOUNT, and the same durations
	PerAddress      lockout.Policy  // LOGIN_MAX_FAILURES_PER_ADDRESS, and the same durations
	IPv6Prefix      int             // LOGIN_IPV6_PREFIX
	DeviceCookie    string          // LOGIN_DEVICE_COOKIE
	TrustedHops     int             // TRUSTED_PROXY_HOPS
	HashConcurrency int             // LOGIN_HASH_CONCURRENCY
	HashMemoryKiB   int64           // LOGIN_HASH_MEMORY_MIB
	HashWait        time.Duration   // LOGIN_HASH_WAIT
	HashQueue       int             // LOGIN_HASH_QUEUE
	CORSOrigins     []string        // CORS_ALLOWED_ORIGINS
	HashParams      password.Params // the cost of the dummy hash for unknown accounts
}

func configFromEnv() (config, error) {
	c := config{
		AccountsSecret: accounts.SecretFromEnv(),
		ClientsSecret:  clients.SecretFromEnv(),
		CORSOrigins:    env.List("CORS_ALLOWED_ORIGINS"),
		HashParams:     password.Default,
	}
	var err error
	perPair, err := env.Int("LOGIN_MAX_FAILURES", 5, 1, 1000)
	if err != nil {
		return c, err
	}
	perAccount, err := env.Int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 20, perPair, 100000)
	if err != nil {
		return c, err
	}
	perAddress, err := env.Int("LOGIN_MAX_FAILURES_PER_ADDRESS", 50, 1, 100000)
	if err != nil {
		return c, err
	}
	window, err := env.Duration("LOGIN_FAILURE_WINDOW", time.Hour, time.Minute, 7*24*time.Hour)
	if err != nil {
		return c, err
	}
	base, err := env.Duration("LOGIN_LOCKOUT_BASE", 30*time.Second, time.Second, time.Hour)
	if err != nil {
		return c, err
	}
	maxLock, err := env.Duration("LOGIN_LOCKOUT_MAX", 15*time.Minute, base, 24*time.Hour)
	if err != nil {
		return c, err
	}
	c.PerPair = lockout.Policy{Threshold: int64(perPair), Window: window, Base: base, Max: maxLock}
	c.PerAccount = lockout.Policy{Threshold: int64(perAccount), Window: window, Base: base, Max: maxLock}
	if c.IPv6Prefix, err = env.Int("LOGIN_IPV6_PREFIX", lockout.DefaultIPv6Prefix, 32, 128); err != nil {
		return c, err
	}
	c.DeviceCookie = env.String("LOGIN_DEVICE_COOKIE", "impo_device")
	c.PerAddress = lockout.Policy{Threshold: int64(perAddress), Window: window, Base: base, Max: maxLock}
	if c.TrustedHops, err = env.Int("TRUSTED_PROXY_HOPS", 0, 0, 10); err != nil {
		return c, err
	}
	if c.HashConcurrency, err = env.Int("LOGIN_HASH_CONCURRENCY", defaultHashConcurrency(), 1, 1024); err != nil {
		return c, err
	}
	mib, err := env.Int("LOGIN_HASH_MEMORY_MIB", defaultHashMemoryMiB(memlimit.Host()), int(password.Default.Memory>>10)+1, 64<<10)
	if err != nil {
		return c, err
	}
	c.HashMemoryKiB = int64(mib) << 10
	if c.HashWait, err = env.Duration("LOGIN_HASH_WAIT", 2*time.Second, 0, 30*time.Second); err != nil {
		return c, err
	}
	if c.HashQueue, err = env.Int("LOGIN_HASH_QUEUE", 64, 0, 100000); err != nil {
		return c, err
	}
	// A working day: a person who logs in at 8:00 and keeps the page
	// open is not asked again before 20:00, and a laptop left closed
	// over lunch does not log them out (idle 8h).
	if c.RefreshIdle, err = env.Duration("LOGIN_REFRESH_IDLE", 8*time.Hour, 5*time.Minute, 7*24*time.Hour); err != nil {
		return c, err
	}
	if c.RefreshMax, err = env.Duration("LOGIN_REFRESH_MAX", 12*time.Hour, 5*time.Minute, 30*24*time.Hour); err != nil {
		return c, err
	}
	// Checked apart, default or not: an idle limit past the absolute one
	// cannot start a family, and a login that started anyway would answer
	// every code exchange 503 and burn the person's code.
	if c.RefreshMax < c.RefreshIdle {
		return c, &env.Error{Var: "LOGIN_REFRESH_MAX", Want: fmt.Sprintf(
			"it is %s, shorter than LOGIN_REFRESH_IDLE (%s): a session cannot stay idle longer than it may last at all; set LOGIN_REFRESH_MAX to at least LOGIN_REFRESH_IDLE (unset, it is 12h)",
			c.RefreshMax, c.RefreshIdle)}
	}
	return c, nil
}

// defaultHashConcurrency is one hash more than the processors the runtime
// uses. GOMAXPROCS, not NumCPU: it is what the runtime runs at once, and
// it follows the container's CPU limit (Go 1.25 and later) where NumCPU
// counts the host's processors. One more, because a hash that the
// scheduler preempts (every 10 ms, for the requests around it) or the
// collector pauses leaves its processor to the next hash rather than to
// answering requests that are only refused: on 2 processors under a
// flood of logins, 2 at once gave 8-13 logins per CPU-second, 3 gave
// 14-16 (about what 13 at once gave before) for 20-40 MiB more, 4 no
// more.
func defaultHashConcurrency() int { return runtime.GOMAXPROCS(0) + 1 }

// defaultHashMemoryMiB gives password hashing half of the instance's
// memory limit (memlimit.Detect: the cgroup's, or what Cloud Run shows),
// or 256 MiB where none is visible or it cannot be read. The budget
// counts the collector's headroom (password.GCHeadroom): at OWASP's floor
// of 19 MiB, 6 hashes' worth in a 512 MiB instance, though the processors
// usually bound them first.
func defaultHashMemoryMiB(sys memlimit.System) int {
	l, err := memlimit.Detect(sys)
	if err != nil || l.Bytes == 0 {
		return 256
	}
	return max(int(l.Bytes>>20)/2, int(password.Default.Memory>>10)+1)
}
