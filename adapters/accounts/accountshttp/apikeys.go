package accountshttp

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/acme/postsvc/adapters/httpapi"
	"github.com/acme/postsvc/domain/accounts/apikey"
	"github.com/acme/postsvc/ports/accounts"
)

type (
	// apiKeyRequest creates a key; expires_in_days absent makes a key that never expires.
	// The contract makes it optional, not nullable: null is 400, as for every number (the
	// kernel's decoder refuses null for an *httpapi.Int).
	apiKeyRequest struct {
		Name          string       `json:"name"`
		ExpiresInDays *httpapi.Int `json:"expires_in_days"`
	}
	apiKeyResponse struct {
		ID         string  `json:"id"`
		Name       string  `json:"name"`
		Prefix     string  `json:"prefix"`
		CreatedAt  string  `json:"created_at"`
		ExpiresAt  *string `json:"expires_at"`
		LastUsedAt *string `json:"last_used_at"`
	}
	// apiKeyCreatedResponse is the only answer that carries the secret.
	apiKeyCreatedResponse struct {
		ID         string  `json:"id"`
		Name       string  `json:"name"`
		Prefix     string  `json:"prefix"`
		CreatedAt  string  `json:"created_at"`
		ExpiresAt  *string `json:"expires_at"`
		LastUsedAt *string `json:"last_used_at"`
		Key        string  `json:"key"`
	}
	apiKeyListResponse struct {
		APIKeys []apiKeyResponse `json:"api_keys"`
	}
)

func toAPIKey(k *apikey.Key) apiKeyResponse {
	return apiKeyResponse{
		ID: string(k.ID()), Name: k.Name(), Prefix: k.Prefix(), CreatedAt: httpapi.Timestamp(k.CreatedAt()),
		ExpiresAt: optionalTimestamp(k.ExpiresAt()), LastUsedAt: optionalTimestamp(k.LastUsedAt()),
	}
}

// optionalTimestamp is a nullable timestamp: null when t is nil.
func optionalTimestamp(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := httpapi.Timestamp(*t)
	return &s
}

func (m *Module) createAPIKey(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	var req apiKeyRequest
	if !httpapi.Decode(c, &req) {
		return
	}
	days, err := httpapi.IntField("expires_in_days", req.ExpiresInDays)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	created, err := m.keys.Create(c.Request.Context(), p, accounts.NewAPIKeyInput{Name: req.Name, ExpiresInDays: days})
	if err == nil && created.Key == nil {
		err = httpapi.ErrNoResult
	}
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	k := toAPIKey(created.Key)
	httpapi.WriteJSON(c, http.StatusCreated, apiKeyCreatedResponse{
		ID: k.ID, Name: k.Name, Prefix: k.Prefix, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LastUsedAt: k.LastUsedAt,
		Key: created.Secret,
	})
}

func (m *Module) listAPIKeys(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	keys, err := m.keys.List(c.Request.Context(), p)
	if err != nil {
		httpapi.Fail(c, err)
		return
	}
	out := apiKeyListResponse{APIKeys: make([]apiKeyResponse, 0, len(keys))}
	for _, k := range keys {
		out.APIKeys = append(out.APIKeys, toAPIKey(k))
	}
	httpapi.WriteJSON(c, http.StatusOK, out)
}

func (m *Module) deleteAPIKey(c *gin.Context) {
	p, ok := httpapi.PrincipalOf(c)
	if !ok {
		return
	}
	if err := m.keys.Delete(c.Request.Context(), p, c.Param("id")); err != nil {
		httpapi.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
