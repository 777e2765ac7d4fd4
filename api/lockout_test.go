package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
)

// burst sends every password in passwords to the login of email at the same
// moment and returns the statuses, in the order of passwords.
func burst(t *testing.T, env *apptest.Env, email string, passwords []string) []int {
	t.Helper()
	statuses := make([]int, len(passwords))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, pw := range passwords {
		wg.Go(func() {
			<-start
			res := env.Do(t, post("/api/auth/login", map[string]string{"email": email, "password": pw}))
			statuses[i] = res.Status
		})
	}
	close(start)
	wg.Wait()
	return statuses
}

// checked counts the answers that required checking the password: a 401 (it
// was wrong) or a 200 (it was right). A 423 means it was never looked at.
func checked(t *testing.T, statuses []int) int {
	t.Helper()
	n := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK, http.StatusUnauthorized:
			n++
		case http.StatusLocked:
		default:
			t.Errorf("a login in the burst answered %d", s)
		}
	}
	return n
}

// Ensure that however many wrong passwords arrive at once, no more than the
// limit are ever checked, exactly the limit is recorded, and the address is
// locked afterwards, on a registered address and on an unknown one alike.
func TestParallelGuessesCheckAtMostTheLimit(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Target")
		for _, n := range []int{20, 100} {
			for _, email := range []string{u.Email, fmt.Sprintf("nobody-%d@example.com", n)} {
				if email == u.Email {
					env.Login(t, u) // a success clears what an earlier round recorded
				}
				passwords := make([]string, n)
				for i := range passwords {
					passwords[i] = fmt.Sprintf("Wrong-pass-%d", i)
				}
				statuses := burst(t, env, email, passwords)
				if got := checked(t, statuses); got != 5 {
					t.Fatalf("%d parallel wrong passwords for %s: %d were checked, want exactly the limit 5", n, email, got)
				}
				if got := failedLogins(t, env, email); got != 5 {
					t.Fatalf("%d parallel wrong passwords for %s: %d failures recorded, want 5", n, email, got)
				}
				env.Do(t, post("/api/auth/login", map[string]string{"email": email, "password": apptest.Password})).
					Expect(t, http.StatusLocked, "ACCOUNT_LOCKED")
				if email == u.Email {
					// Let the next round start from a clean record.
					if _, err := env.App.Engines.Control.Exec(t.Context(), `DELETE FROM login_failures WHERE email = $1`, email); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
	})
}

// Ensure that once a burst of wrong passwords has reached the limit, the
// right password sent while the rest of the burst is still arriving is
// refused like any other guess.
func TestRightPasswordIsRefusedOnceABurstReachesTheLimit(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Burst")
		limitReached := make(chan struct{})
		var once sync.Once
		var wg sync.WaitGroup
		var mu sync.Mutex
		statuses := map[int]int{}
		for i := range 40 {
			wg.Go(func() {
				res := env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": fmt.Sprintf("Wrong-pass-%d", i)}))
				mu.Lock()
				statuses[res.Status]++
				mu.Unlock()
				if res.Status == http.StatusLocked {
					once.Do(func() { close(limitReached) })
				}
			})
		}
		finished := make(chan struct{})
		go func() { wg.Wait(); close(finished) }()
		select {
		case <-limitReached:
		case <-finished:
			t.Fatalf("40 parallel wrong passwords answered %v: none was refused", statuses)
		}
		env.Do(t, post("/api/auth/login", map[string]string{"email": u.Email, "password": apptest.Password})).
			Expect(t, http.StatusLocked, "ACCOUNT_LOCKED")
		<-finished
		if statuses[http.StatusUnauthorized] != 5 || statuses[http.StatusLocked] != 35 {
			t.Fatalf("40 parallel wrong passwords answered %v, want 5 × 401 and 35 × 423", statuses)
		}
	})
}

// Ensure a success that itself reached the limit clears the record it
// completed, so a user who found the password at the last try is not locked
// out afterwards.
func TestSuccessThatReachedTheLimitClearsIt(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		env := apptest.StartShape(t, shape)
		u := env.Register(t, "Keeper")
		wrong := map[string]string{"email": u.Email, "password": "Wrong-pass-1"}
		right := map[string]string{"email": u.Email, "password": apptest.Password}
		for range 4 {
			env.Do(t, post("/api/auth/login", wrong)).Expect(t, http.StatusUnauthorized, "INVALID_CREDENTIALS")
		}
		// The fifth attempt, right, reaches the limit itself: its success
		// clears the record it completed.
		env.Do(t, post("/api/auth/login", right)).Expect(t, http.StatusOK, "")
		if _, found := env.LoginFailures(t, u.Email); found {
			t.Fatal("a success that reached the limit itself left the lock in place")
		}
		env.Do(t, post("/api/auth/login", right)).Expect(t, http.StatusOK, "")
	})
}
