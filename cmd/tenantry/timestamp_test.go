package main

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"testing"
	"time"

	"github.com/tenantry/tenantry/apptest"
	"github.com/tenantry/tenantry/config"
	"github.com/tenantry/tenantry/timestamp/tsatest"
)

// Ensure a worker process killed while its stamp is at the authority
// leaves the file to the next process, which stamps it, once: the job of
// the dead process is taken for lost and worked again, and nothing was
// kept of the first try.
func TestTimestampSurvivesAKilledWorker(t *testing.T) {
	apptest.EachShape(t, func(t *testing.T, shape config.Shape) {
		t.Parallel()
		tsa := tsatest.NewAuthority(t, "Killed", tsatest.SignerOptions{})
		authorities, _ := json.Marshal([]map[string]string{{"name": "local", "url": tsa.URL, "roots_pem": tsa.CA.RootPEM()}})
		env := apptest.Environ(t, shape)
		env["TENANTRY_TSA_AUTHORITIES"] = string(authorities)
		env["TENANTRY_TSA_RETRY_DELAY"] = "50ms"
		env["TENANTRY_JOB_RESCUE_AFTER"] = "2s"

		// serve works jobs itself in the embedded shape; in the
		// production shape a worker process does.
		api := startServe(t, env)
		worker := api
		if shape == config.Production {
			worker = startWorker(t, env)
		}
		register := map[string]string{"first_name": "Kill", "last_name": "Nine", "email": "kill.nine@example.com", "password": apptest.Password}
		if status, body := api.do(t, "POST", "/api/auth/register", "", register); status != 201 {
			t.Fatalf("register: %d %v", status, body)
		}
		_, body := api.do(t, "POST", "/api/auth/login", "", map[string]string{"email": register["email"], "password": apptest.Password})
		token := body["data"].(map[string]any)["access_token"].(string)
		_, body = api.do(t, "POST", "/api/tenants", token, map[string]string{"name": "Killed"})
		tenantID := body["data"].(map[string]any)["id"].(string)
		if status, body := api.do(t, "PUT", "/api/tenants/"+tenantID+"/timestamping", token, map[string]any{"enabled": true, "authority": "local"}); status != 200 {
			t.Fatalf("enable: %d %v", status, body)
		}

		entered := tsa.Hold()
		content := []byte("signed contract, version 7")
		fileID := upload(t, api, token, tenantID, content)
		select {
		case <-entered:
		case <-time.After(60 * time.Second):
			t.Fatal("the stamp never reached the authority")
		}
		if err := worker.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := <-worker.done
		worker.done <- err // for the cleanup
		tsa.Release()

		// The next process takes the dead one's job for lost once it
		// has been running for TENANTRY_JOB_RESCUE_AFTER.
		next := startServe(t, env)
		if shape == config.Production {
			startWorker(t, env)
		}
		deadline := time.Now().Add(90 * time.Second)
		var st map[string]any
		for {
			_, body := next.do(t, "GET", "/api/tenants/"+tenantID+"/files/"+fileID+"/timestamp", token, nil)
			st = body["data"].(map[string]any)
			if st["status"] == "stamped" || st["status"] == "failed" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("still %v after the restart", st)
			}
			time.Sleep(100 * time.Millisecond)
		}
		if st["status"] != "stamped" || st["chain_length"].(float64) != 1 {
			t.Fatalf("after the restart: %v", st)
		}
		req, _ := http.NewRequest("GET", next.url("/api/tenants/"+tenantID+"/files/"+fileID+"/timestamp/download"), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		tsr, _ := io.ReadAll(res.Body)
		res.Body.Close()
		tsatest.VerifyWithOpenSSL(t, tsr, content, "", tsa.CA.WriteRoot(t, t.TempDir()))
	})
}

// upload stores content as a document and returns its file's id.
func upload(t *testing.T, p *process, token, tenantID string, content []byte) string {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	part, _ := w.CreateFormFile("file", "contract.txt")
	part.Write(content)
	w.Close()
	req, _ := http.NewRequest("POST", p.url("/api/tenants/"+tenantID+"/documents"), &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var body struct {
		Data struct {
			FileID string `json:"file_id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil || res.StatusCode != 201 {
		t.Fatalf("upload: %d %v", res.StatusCode, err)
	}
	return body.Data.FileID
}
