// Command authtest is a stand-in Authority for demos and scripts, on
// loopback only: it serves a discovery document and the JWKS of a signing
// key, and mints access tokens signed by that key. The key committed next
// to it (testdata/demo-issuer.jwk) is a TEST key, public in this
// repository: never trust it on a real site.
//
//	authtest serve -key testdata/demo-issuer.jwk [-listen 127.0.0.1:0]
//	    prints "issuer http://127.0.0.1:PORT" once it listens; serves
//	    /.well-known/openid-configuration and /jwks (max-age=300)
//	authtest token -key testdata/demo-issuer.jwk -issuer URL [-aud api://concelier]
//	    [-scope concelier.mirror.read] [-sub ops@example.com] [-client concelier-cli] [-ttl 5m]
//	    prints a token
//	authtest jwks -key testdata/demo-issuer.jwk -issuer URL -out DIR
//	    writes DIR/discovery.json and DIR/jwks.json (a saved pair for kit.yaml)
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: authtest serve|token|jwks -key JWK ...")
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	keyFile := fs.String("key", "", "private signing key (JWK)")
	listen := fs.String("listen", "127.0.0.1:0", "serve: loopback address")
	issuer := fs.String("issuer", "", "token, jwks: the issuer URL")
	aud := fs.String("aud", "api://concelier", "token: audience")
	scope := fs.String("scope", "concelier.mirror.read", "token: space-separated scopes")
	sub := fs.String("sub", "ops@example.com", "token: subject")
	client := fs.String("client", "concelier-cli", "token: client_id")
	ttl := fs.Duration("ttl", 5*time.Minute, "token: lifetime")
	out := fs.String("out", "", "jwks: folder to write discovery.json and jwks.json to")
	fs.Parse(os.Args[2:])
	key := readKey(*keyFile)
	switch os.Args[1] {
	case "serve":
		serve(key, *listen)
	case "token":
		if *issuer == "" {
			log.Fatal("token: -issuer is required")
		}
		fmt.Println(token(key, *issuer, *aud, *scope, *sub, *client, *ttl))
	case "jwks":
		if *issuer == "" || *out == "" {
			log.Fatal("jwks: -issuer and -out are required")
		}
		disc, jwks := documents(key, *issuer)
		must(os.MkdirAll(*out, 0o755))
		must(os.WriteFile(filepath.Join(*out, "discovery.json"), disc, 0o644))
		must(os.WriteFile(filepath.Join(*out, "jwks.json"), jwks, 0o644))
	default:
		log.Fatalf("unknown command %q", os.Args[1])
	}
}

func readKey(name string) jose.JSONWebKey {
	if name == "" {
		log.Fatal("-key is required")
	}
	b, err := os.ReadFile(name)
	must(err)
	var k jose.JSONWebKey
	must(k.UnmarshalJSON(b))
	if k.IsPublic() || k.KeyID == "" || k.Algorithm == "" {
		log.Fatalf("%s: not a private JWK with kid and alg", name)
	}
	return k
}

// documents are the discovery document and the JWKS (the public key) of
// issuer, with a stable layout.
func documents(key jose.JSONWebKey, issuer string) (disc, jwks []byte) {
	disc, err := json.MarshalIndent(map[string]any{
		"issuer":                                issuer,
		"jwks_uri":                              strings.TrimSuffix(issuer, "/") + "/jwks",
		"token_endpoint":                        strings.TrimSuffix(issuer, "/") + "/token",
		"id_token_signing_alg_values_supported": []string{key.Algorithm},
	}, "", "  ")
	must(err)
	jwks, err = json.MarshalIndent(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}, "", "  ")
	must(err)
	return append(disc, '\n'), append(jwks, '\n')
}

func serve(key jose.JSONWebKey, listen string) {
	ln, err := net.Listen("tcp", listen)
	must(err)
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		log.Fatalf("%s: authtest listens on loopback only", listen)
	}
	issuer := "http://" + ln.Addr().String()
	disc, jwks := documents(key, issuer)
	mux := http.NewServeMux()
	for path, body := range map[string][]byte{"/.well-known/openid-configuration": disc, "/jwks": jwks} {
		mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "public, max-age=300")
			w.Write(body)
		})
	}
	fmt.Printf("issuer %s\n", issuer)
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln))
}

func token(key jose.JSONWebKey, issuer, aud, scope, sub, client string, ttl time.Duration) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: key.Key},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", key.KeyID))
	must(err)
	now := time.Now()
	b, err := json.Marshal(map[string]any{"iss": issuer, "aud": aud, "sub": sub, "client_id": client, "scope": scope,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": fmt.Sprintf("demo-%d", now.UnixNano())})
	must(err)
	obj, err := s.Sign(b)
	must(err)
	tok, err := obj.CompactSerialize()
	must(err)
	return tok
}

func must(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
