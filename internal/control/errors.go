package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/ca"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/store"
)

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error     string `json:"error"`
	Code      string `json:"code"`            // stable, for clients to branch on
	Field     string `json:"field,omitempty"` // the input at fault, when one is
	Line      int    `json:"line,omitempty"`  // its line, in a YAML document
	RequestID string `json:"request_id"`
}

// apiError is an error with the response it deserves.
type apiError struct {
	status int
	code   string
	field  string
	line   int
	msg    string
	err    error // the cause, logged; may be nil
}

func (e *apiError) Error() string { return e.msg }
func (e *apiError) Unwrap() error { return e.err }

func badRequest(field, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid", field: field, msg: msg}
}

// Error codes of the join endpoint, one per way a token is refused.
const (
	CodeTokenUnknown      = "token_unknown"
	CodeTokenUsed         = "token_used"
	CodeTokenExpired      = "token_expired"
	CodeTokenRevoked      = "token_revoked"
	CodeTokenWrongService = "token_wrong_service"
	CodeServiceRevoked    = "service_revoked"
	CodeSVIDExpired       = "svid_expired"   // renewal with an expired SVID
	CodeSVIDUntrusted     = "svid_untrusted" // renewal with a certificate this CA did not issue
)

// classify maps an error to its response.
func classify(err error) *apiError {
	if ae, ok := errors.AsType[*apiError](err); ok {
		return ae
	}
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &apiError{status: http.StatusRequestEntityTooLarge, code: "too_large",
			msg: fmt.Sprintf("request body larger than %d bytes", mbe.Limit), err: err}
	}
	if pe, ok := errors.AsType[*policy.Error](err); ok {
		return &apiError{status: http.StatusBadRequest, code: "invalid_policy", field: pe.Field, line: pe.Line,
			msg: strings.TrimPrefix(pe.Error(), "policy: "), err: err}
	}
	if ie, ok := errors.AsType[*store.InvalidError](err); ok {
		return &apiError{status: http.StatusBadRequest, code: "invalid", field: ie.Field,
			msg: "invalid " + ie.Field + ": " + ie.Reason, err: err}
	}
	e := func(status int, code, msg string) *apiError {
		return &apiError{status: status, code: code, msg: msg, err: err}
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return e(http.StatusNotFound, "not_found", "not found")
	case errors.Is(err, store.ErrConflict):
		return e(http.StatusConflict, "conflict", "conflict: "+strings.TrimPrefix(err.Error(), "store: "))
	case errors.Is(err, store.ErrTokenUnknown):
		return e(http.StatusUnauthorized, CodeTokenUnknown, "join token unknown: it was never issued or is mistyped")
	case errors.Is(err, store.ErrTokenUsed):
		return e(http.StatusConflict, CodeTokenUsed, "join token used up (every use it allowed is spent): create a new one with 'rampart token create'")
	case errors.Is(err, store.ErrTokenExpired):
		return e(http.StatusGone, CodeTokenExpired, "join token expired: create a new one with 'rampart token create'")
	case errors.Is(err, store.ErrTokenRevoked):
		return e(http.StatusForbidden, CodeTokenRevoked, "join token revoked by an admin: create a new one with 'rampart token create'")
	case errors.Is(err, store.ErrTokenWrongService):
		return e(http.StatusForbidden, CodeTokenWrongService, "join token was created for another service")
	case errors.Is(err, ca.ErrSVIDExpired):
		return e(http.StatusUnauthorized, CodeSVIDExpired, "client certificate: "+err.Error())
	case errors.Is(err, ca.ErrUntrustedSVID):
		return e(http.StatusUnauthorized, CodeSVIDUntrusted, "client certificate: "+err.Error())
	case errors.Is(err, ca.ErrRevoked):
		return e(http.StatusForbidden, CodeServiceRevoked, err.Error())
	case errors.Is(err, ca.ErrInvalidServiceName):
		ae := e(http.StatusBadRequest, "invalid", err.Error())
		ae.field = "service"
		return ae
	case errors.Is(err, ca.ErrInvalidCSR), errors.Is(err, ca.ErrUnsupportedKey):
		ae := e(http.StatusBadRequest, "invalid", err.Error())
		ae.field = "csr"
		return ae
	case errors.Is(err, context.Canceled):
		return e(499, "canceled", "request canceled") // the client is gone; nobody reads it
	}
	return e(http.StatusInternalServerError, "internal", "internal error")
}

func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, requestID string, err error) {
	ae := classify(err)
	attrs := []any{"request_id", requestID, "method", r.Method, "path", r.URL.Path, "status", ae.status, "code", ae.code}
	if ae.err != nil {
		attrs = append(attrs, "err", ae.err)
	} else {
		attrs = append(attrs, "err", ae.msg)
	}
	level := slog.LevelInfo
	var q expectedError
	switch {
	case ae.status >= 500:
		level = slog.LevelError
	case errors.As(err, &q):
		level = slog.LevelDebug
	}
	h.log.Log(r.Context(), level, "control: request failed", attrs...)
	writeJSON(w, ae.status, ErrorBody{Error: ae.msg, Code: ae.code, Field: ae.field, Line: ae.line, RequestID: requestID})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":"internal error","code":"internal"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(data, '\n'))
}

// readText reads a request body of at most limit bytes of one of the media
// types, as UTF-8 text.
func readText(w http.ResponseWriter, r *http.Request, limit int64, types ...string) (string, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !slices.Contains(types, mt) {
		return "", &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
			msg: "Content-Type must be " + types[0]}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		return "", err
	}
	if !utf8.Valid(data) {
		return "", badRequest("", "body is not UTF-8 text")
	}
	return string(data), nil
}

func jsonError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return err
	}
	if ute, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return badRequest(ute.Field, fmt.Sprintf("malformed JSON: %s must be %s, not %s", ute.Field, ute.Type, ute.Value))
	}
	if errors.Is(err, io.EOF) {
		return badRequest("", "malformed JSON: empty body")
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field = strings.Trim(field, `"`)
		return badRequest(field, "unknown field "+strconvQuote(field))
	}
	return badRequest("", "malformed JSON: "+strings.TrimPrefix(err.Error(), "json: "))
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// expectedError marks an error answer that is part of normal operation
// (every service asks for the policy before anyone applied one): it is
// answered as err is, and logged at debug level, not info, so that a
// thousand services waiting for their first policy do not fill the log.
type expectedError struct{ err error }

func (e expectedError) Error() string { return e.err.Error() }
func (e expectedError) Unwrap() error { return e.err }
