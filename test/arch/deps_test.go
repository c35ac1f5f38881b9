// Package arch checks the shape of the hexagon and of its bounded contexts:
//
//   - the inner layers (domain, ports, application) see only the standard library and layers
//     further in, so no gin, gorm, viper, jwt or go-cache type can cross into them;
//   - a bounded context never imports another context's packages: contexts talk through the
//     shared kernel (the identity kernel, the kernel's ports, events and hooks);
//   - the shared kernel imports no context at all;
//   - adapters of the kernel do not import one another, and a context's adapters import only
//     the kernel adapters they build on (the HTTP kernel, the persistence kernel).
//
// A bounded context is found by convention, not listed: every folder under ports/ names one,
// and its packages are domain/<c>/..., ports/<c>, application/<c>, adapters/<c>/...,
// test/fakes/<c>fake and test/contract/<c>. A new context is checked as soon as it exists.
package arch

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/acme/postsvc/"

// allowed lists, per layer, the module-internal layers it may import. Anything outside the
// module must be standard library for these layers, but for allowedExternal.
var allowed = map[string][]string{
	"domain":      {"domain"},
	"ports":       {"domain", "ports"},
	"application": {"domain", "ports", "application"},
}

// allowedExternal are the only non-standard packages an inner layer may import, and why:
// email addresses are normalised to Unicode NFC, which the standard library cannot do.
var allowedExternal = map[string][]string{
	"domain": {"golang.org/x/text/unicode/norm"},
}

// kernelAdapters are the adapters a context's adapters may build on.
var kernelAdapters = []string{"adapters/httpapi", "adapters/gormstore"}

// sharedClients are adapters that only open a connection to an external service, with the
// settings the adapters using it depend on; any adapter may build on them.
var sharedClients = []string{"adapters/redisx"}

// processResources adapt the process's own resources (the clock, identifiers, file locks);
// any adapter may build on them, as on the standard library.
var processResources = []string{"adapters/system"}

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

// goImport is one import of one file.
type goImport struct {
	file, pkg, path string // pkg: the importing file's folder, relative to the root
	test            bool
}

// imports returns every import of the Go files under dir (tests included).
func imports(t *testing.T, root, dir string) []goImport {
	t.Helper()
	var out []goImport
	err := filepath.WalkDir(filepath.Join(root, dir), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			out = append(out, goImport{file: rel, pkg: filepath.ToSlash(filepath.Dir(rel)), path: p, test: strings.HasSuffix(path, "_test.go")})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// under reports whether the module-relative path rel is pkg or inside it.
func under(rel, pkg string) bool { return rel == pkg || strings.HasPrefix(rel, pkg+"/") }

// contexts lists the bounded contexts: the folders under ports/.
func contexts(t *testing.T, root string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(root, "ports"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 2 {
		t.Fatalf("found contexts %v under ports/; the convention has changed", out)
	}
	return out
}

// contextOf returns the context a module-relative package belongs to, or "" for the kernel
// and everything outside the contexts (cmd, config, the cross-cutting test suites).
func contextOf(rel string, ctxs []string) string {
	for _, c := range ctxs {
		for _, p := range []string{"domain/" + c, "ports/" + c, "application/" + c, "adapters/" + c, "test/fakes/" + c + "fake", "test/contract/" + c} {
			if under(rel, p) {
				return c
			}
		}
	}
	return ""
}

// isKernel reports whether a module-relative package is part of the shared kernel: the inner
// layers and adapters outside every context.
func isKernel(rel string, ctxs []string) bool {
	if contextOf(rel, ctxs) != "" {
		return false
	}
	for _, layer := range []string{"domain", "ports", "application", "adapters"} {
		if under(rel, layer) {
			return true
		}
	}
	return false
}

func TestInnerLayersSeeOnlyStdlibAndInnerLayers(t *testing.T) {
	root := repoRoot(t)
	for layer, may := range allowed {
		for _, imp := range imports(t, root, layer) {
			if isStdlib(imp.path) || slices.Contains(allowedExternal[layer], imp.path) {
				continue
			}
			rel, internal := strings.CutPrefix(imp.path, module)
			ok := false
			for _, m := range may {
				if internal && under(rel, m) {
					ok = true
				}
			}
			// Use-case tests may use the shared in-memory fakes; production files may not.
			if internal && under(rel, "test/fakes") && imp.test {
				ok = true
			}
			if !ok {
				t.Errorf("%s imports %s: the %s layer may import only the standard library and %v", imp.file, imp.path, layer, may)
			}
		}
	}
}

func TestContextsDoNotImportEachOther(t *testing.T) {
	root := repoRoot(t)
	ctxs := contexts(t, root)
	for _, dir := range []string{"domain", "ports", "application", "adapters", "test/fakes", "test/contract"} {
		for _, imp := range imports(t, root, dir) {
			from := contextOf(imp.pkg, ctxs)
			rel, internal := strings.CutPrefix(imp.path, module)
			if from == "" || !internal {
				continue
			}
			to := contextOf(rel, ctxs)
			// A contract runner wires the storage its suite needs, as the composition root
			// does: the posts suite stores the users its posts belong to.
			if to == "" || to == from || (under(imp.pkg, "test/contract") && imp.test) {
				continue
			}
			t.Errorf("%s (context %s) imports %s (context %s): contexts talk through the shared kernel", imp.file, from, imp.path, to)
		}
	}
}

func TestKernelImportsNoContext(t *testing.T) {
	root := repoRoot(t)
	ctxs := contexts(t, root)
	for _, dir := range []string{"domain", "ports", "application", "adapters"} {
		for _, imp := range imports(t, root, dir) {
			rel, internal := strings.CutPrefix(imp.path, module)
			// The kernel's own tests may assemble real modules (the HTTP kernel's router
			// tests serve the real routes).
			if !internal || imp.test || !isKernel(imp.pkg, ctxs) {
				continue
			}
			if c := contextOf(rel, ctxs); c != "" {
				t.Errorf("%s (shared kernel) imports %s (context %s): the kernel knows no context", imp.file, imp.path, c)
			}
		}
	}
}

func TestAdaptersBuildOnlyOnKernelAdapters(t *testing.T) {
	root := repoRoot(t)
	ctxs := contexts(t, root)
	for _, imp := range imports(t, root, "adapters") {
		rel, internal := strings.CutPrefix(imp.path, module)
		if !internal || !under(rel, "adapters") || imp.test || under(rel, imp.pkg) || under(imp.pkg, rel) {
			continue
		}
		from, to := contextOf(imp.pkg, ctxs), contextOf(rel, ctxs)
		switch {
		case slices.ContainsFunc(sharedClients, func(k string) bool { return under(rel, k) }):
			// A connection to a shared service, such as Redis.
		case slices.ContainsFunc(processResources, func(k string) bool { return under(rel, k) }):
			// The process's own resources, such as a file lock.
		case from != "" && to == from:
			// A context's adapters may share its own packages.
		case from != "" && slices.ContainsFunc(kernelAdapters, func(k string) bool { return under(rel, k) }):
			// A context's module builds on the HTTP kernel, its repositories on the
			// persistence kernel.
		default:
			t.Errorf("%s imports %s: adapters talk through ports, not each other's internals", imp.file, imp.path)
		}
	}
}

// TestCheckerCatchesALeak proves the checks above can fail: a file that imports gin inside a
// fake domain tree must be reported, and a posts package importing an accounts one is a
// cross-context import.
func TestCheckerCatchesALeak(t *testing.T) {
	dir := t.TempDir()
	src := "package x\n\nimport _ \"github.com/gin-gonic/gin\"\n"
	if err := os.WriteFile(filepath.Join(dir, "leak.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, imp := range imports(t, dir, ".") {
		if !isStdlib(imp.path) && !strings.HasPrefix(imp.path, module) {
			found = true
		}
	}
	if !found {
		t.Fatal("the import scanner missed a framework import")
	}
	ctxs := []string{"accounts", "posts"}
	if contextOf("application/posts", ctxs) != "posts" || contextOf("adapters/accounts/accountsgorm", ctxs) != "accounts" ||
		contextOf("domain/identity", ctxs) != "" || !isKernel("adapters/httpapi", ctxs) || isKernel("domain/posts/post", ctxs) {
		t.Fatal("the context convention is misread")
	}
}
