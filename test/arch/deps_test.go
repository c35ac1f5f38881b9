// Package arch checks the dependency direction of the hexagon: the inner layers (domain,
// ports, application) see only the standard library and layers further in, so no gin, gorm,
// viper, jwt or go-cache type can cross into them; adapters never reach into one another.
package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/acme/postsvc/"

// allowed lists, per layer, the module-internal layers it may import. Anything outside the
// module must be standard library for these layers.
var allowed = map[string][]string{
	"domain":      {"domain"},
	"ports":       {"domain", "ports"},
	"application": {"domain", "ports", "application"},
}

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// imports returns every import path of the Go files (tests included) under dir, with the file
// that imports it.
func imports(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out[p] = path
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// extendedStdlib lists the only packages from outside the standard library that the inner
// layers may import: maintained by the Go project as a supplement to it, holding algorithms
// rather than framework types. Unicode normalisation (NFC) of emails is a domain rule, and
// the standard library has no NFC.
var extendedStdlib = map[string]bool{
	"golang.org/x/text/unicode/norm": true,
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

func TestInnerLayersSeeOnlyStdlibAndInnerLayers(t *testing.T) {
	root := repoRoot(t)
	for layer, may := range allowed {
		for imp, file := range imports(t, filepath.Join(root, layer)) {
			if isStdlib(imp) || extendedStdlib[imp] {
				continue
			}
			rel, internal := strings.CutPrefix(imp, module)
			ok := false
			for _, m := range may {
				if internal && (rel == m || strings.HasPrefix(rel, m+"/")) {
					ok = true
				}
			}
			// Use-case tests may use the shared in-memory fakes; production files may not.
			if internal && strings.HasPrefix(rel, "test/fakes") && strings.HasSuffix(file, "_test.go") {
				ok = true
			}
			if !ok {
				t.Errorf("%s imports %s: the %s layer may import only the standard library and %v", file, imp, layer, may)
			}
		}
	}
}

func TestAdaptersDoNotImportEachOther(t *testing.T) {
	root := repoRoot(t)
	entries, err := os.ReadDir(filepath.Join(root, "adapters"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		for imp, file := range imports(t, filepath.Join(root, "adapters", e.Name())) {
			rel, internal := strings.CutPrefix(imp, module+"adapters/")
			if internal && !strings.HasPrefix(rel, e.Name()) && !strings.HasSuffix(file, "_test.go") {
				t.Errorf("%s imports %s: adapters talk through ports, not each other's internals", file, imp)
			}
		}
	}
}

// TestCheckerCatchesALeak proves the check above can fail: a file that imports gin inside a
// fake domain tree must be reported.
func TestCheckerCatchesALeak(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\nimport _ \"github.com/gin-gonic/gin\"\n"
	if err := os.WriteFile(filepath.Join(dir, "leak.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	found := false
	for imp := range imports(t, dir) {
		if !isStdlib(imp) && !strings.HasPrefix(imp, module) {
			found = true
		}
	}
	if !found {
		t.Fatal("the import scanner missed a framework import")
	}
}
