package authority

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// AuditLogger is the name of the audit logger (the runbook's
// Concelier.Authorization.Audit), carried as the "logger" attribute.
const AuditLogger = "offkit.authorization.audit"

// AuditRecord is one audit line: the runbook's fields, then the outcome
// and its reason.
type AuditRecord struct {
	Route    string
	Status   int
	Subject  string
	ClientID string
	Scopes   []string
	Bypass   bool
	Remote   netip.Addr
	Outcome  Outcome
	Reason   string
}

// NewAuditRecord is the record of a request to route that was answered with
// status after res.
func NewAuditRecord(route string, status int, res Result, remote netip.Addr) AuditRecord {
	return AuditRecord{Route: route, Status: status, Subject: res.Subject, ClientID: res.ClientID, Scopes: res.Scopes,
		Bypass: res.Bypass, Remote: remote, Outcome: res.Outcome, Reason: res.Reason}
}

func (a AuditRecord) subject() string  { return orDefault(a.Subject, "(anonymous)") }
func (a AuditRecord) clientID() string { return orDefault(a.ClientID, "(none)") }
func (a AuditRecord) scopes() string   { return orDefault(strings.Join(a.Scopes, ","), "(none)") }
func (a AuditRecord) bypass() string {
	if a.Bypass {
		return "True"
	}
	return "False"
}
func (a AuditRecord) remote() string {
	if !a.Remote.IsValid() {
		return "(none)"
	}
	return a.Remote.Unmap().String()
}

// String is the line in the runbook's form,
//
//	route=/concelier/exports/index.json status=200 subject=ops@example.com clientId=concelier-cli scopes=concelier.mirror.read bypass=False remote=10.1.4.7 outcome=ok reason="token accepted"
//
// with (anonymous) for a missing subject and (none) for a missing client
// id, scope list or remote address. Scopes are joined with commas. A value
// with a space, quote, '=' or a control character is quoted (logfmt), so a
// claim cannot forge fields.
func (a AuditRecord) String() string {
	var b strings.Builder
	for i, kv := range [][2]string{
		{"route", a.Route}, {"status", strconv.Itoa(a.Status)}, {"subject", a.subject()},
		{"clientId", a.clientID()}, {"scopes", a.scopes()}, {"bypass", a.bypass()}, {"remote", a.remote()},
		{"outcome", a.Outcome.String()}, {"reason", a.Reason},
	} {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(kv[0])
		b.WriteByte('=')
		b.WriteString(logfmtValue(kv[1]))
	}
	return b.String()
}

func logfmtValue(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r == '\\' || r == 0x7f || r > 0x7e {
			return strconv.Quote(s)
		}
	}
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Attrs are the record's fields for a structured (JSON) log, with the same
// values as String.
func (a AuditRecord) Attrs() []slog.Attr {
	return []slog.Attr{
		slog.String("logger", AuditLogger),
		slog.String("route", a.Route),
		slog.Int("status", a.Status),
		slog.String("subject", a.subject()),
		slog.String("clientId", a.clientID()),
		slog.String("scopes", a.scopes()),
		slog.String("bypass", a.bypass()),
		slog.String("remote", a.remote()),
		slog.String("outcome", a.Outcome.String()),
		slog.String("reason", a.Reason),
	}
}

// AuditLines counts the audit lines written (AuditRecord.Log) by status,
// bypass ("True"/"False") and scopes ("(none)" or "some"): the runbook's
// alert queries (status=401 with bypass=True; status=200 with
// scopes="(none)") on offkit's own /metrics, without a log pipeline. Every
// label comes from a fixed set. Register it once per registry
// (offkit serve does).
var AuditLines = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "offkit_authorization_audit_lines_total",
	Help: "Audit lines of protected requests (logger offkit.authorization.audit), by final status, bypass and whether the token carried scopes.",
}, []string{"status", "bypass", "scopes"})

// Log writes the record to l at Info (Warn for a refusal), and counts it
// in AuditLines.
func (a AuditRecord) Log(ctx context.Context, l *slog.Logger) {
	status := "other"
	if a.Status >= 100 && a.Status <= 599 {
		status = strconv.Itoa(a.Status)
	}
	scopes := "some"
	if len(a.Scopes) == 0 {
		scopes = "(none)"
	}
	AuditLines.WithLabelValues(status, a.bypass(), scopes).Inc()
	level := slog.LevelInfo
	if a.Status >= 400 {
		level = slog.LevelWarn
	}
	l.LogAttrs(ctx, level, "authorization audit", a.Attrs()...)
}

// ClientAddr is the client's address: the connection's peer, or, when the
// peer is one of trusted (proxies), the right-most address of
// X-Forwarded-For that is not itself a trusted proxy. A malformed
// X-Forwarded-For entry stops the walk at the last good address.
func ClientAddr(remoteAddr string, xff []string, trusted []netip.Prefix) netip.Addr {
	peer := parseHostAddr(remoteAddr)
	if !inPrefixes(peer, trusted) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	addr := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr
		}
		addr = a.Unmap().WithZone("")
		if !inPrefixes(addr, trusted) {
			return addr
		}
	}
	return addr
}

func parseHostAddr(s string) netip.Addr {
	host := s
	if h, _, err := net.SplitHostPort(s); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// RequestFrom makes a Request of an HTTP request: its Authorization and
// DPoP headers, method, URL (https when it came over TLS, the Host header,
// the path), client certificates, and client address (ClientAddr with the
// validator's trusted proxies). requiredScopes are the route group's.
func (v *Validator) RequestFrom(r *http.Request, requiredScopes []string) Request {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	req := Request{
		Authorization:  r.Header.Values("Authorization"),
		DPoP:           r.Header.Values("DPoP"),
		Method:         r.Method,
		URL:            &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath},
		Remote:         ClientAddr(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), v.proxies),
		RequiredScopes: requiredScopes,
	}
	if r.TLS != nil {
		req.PeerCertificates = r.TLS.PeerCertificates
	}
	return req
}
