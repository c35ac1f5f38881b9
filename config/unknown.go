package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/viper"
)

// A name that is not a setting is a typo more often than not (cache.post_ttl for
// cache.posts_ttl), and ignoring it silently runs the service with the default the operator
// meant to change. The two sources are treated differently:
//
//   - A configuration file is the service's own: every key in it must be a setting, and one
//     that is not stops start-up like any invalid setting, with the closest setting's name.
//   - The environment is shared with everything else in the process's world (Kubernetes
//     adds APP_SERVICE_HOST and APP_PORT_8080_TCP for a Service named "app"), so an APP_
//     variable that is not a setting is only warned about, and only when it is close to one.

// unknownFileKeys returns one error per key of the configuration file that is not a setting.
// Keys under a setting (a section given to a single value) and a section given a single value
// are left to checkDecoding, which names them as values of the wrong kind.
func unknownFileKeys(file string) []error {
	fv := viper.New()
	fv.SetConfigFile(file)
	if err := fv.ReadInConfig(); err != nil {
		// Load read the same file a moment ago; it reports a failure itself.
		return nil
	}
	leaves, sections := settingNames()
	byName := map[string]string{}
	for key := range leaves {
		byName[key] = key
	}
	var errs []error
	keys := fv.AllKeys()
	slices.Sort(keys)
	for _, key := range keys {
		if leaves[key] || sections[key] || underLeaf(key, leaves) {
			continue
		}
		msg := fmt.Sprintf("config file %s: %q is not a setting", file, key)
		if near := closest(key, byName, true); near != "" {
			msg += fmt.Sprintf("; did you mean %q (%s)?", near, EnvName(near))
		} else {
			msg += " (the README lists the settings)"
		}
		errs = append(errs, fmt.Errorf("%s", msg))
	}
	return errs
}

// nearMissEnv returns a warning for each APP_ variable in the environment that is not a
// setting but is close to one, naming that one.
func nearMissEnv() []string {
	leaves, sections := settingNames()
	known, byName := map[string]bool{}, map[string]string{}
	for key := range leaves {
		known[EnvName(key)] = true
		byName[EnvName(key)] = key
	}
	for key := range sections {
		known[EnvName(key)] = true // checkDecoding reports these
	}
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix+"_") || known[name] {
			continue
		}
		if near := closest(name, byName, false); near != "" {
			out = append(out, fmt.Sprintf("%s is not a setting and is ignored; did you mean %s?", name, EnvName(near)))
		}
	}
	slices.Sort(out)
	return out
}

// settingNames returns the keys of Config's settings and of its sections.
func settingNames() (leaves, sections map[string]bool) {
	leaves, sections = map[string]bool{}, map[string]bool{}
	for _, s := range settings() {
		if s.section {
			sections[s.key] = true
		} else {
			leaves[s.key] = true
		}
	}
	return leaves, sections
}

// underLeaf reports whether key lies under a setting (http.addr.port under http.addr).
func underLeaf(key string, leaves map[string]bool) bool {
	for i := range len(key) {
		if key[i] == '.' && leaves[key[:i]] {
			return true
		}
	}
	return false
}

// closest returns the key of the setting whose spelling in names (spelling -> key) is
// nearest to name: within an edit distance of a quarter of its length (at least 2),
// ignoring case. Failing that, when lastPart is set, it returns the one setting whose name
// ends in the same part after a dot as name (posts_ttl at the top level for
// cache.posts_ttl). It returns "" when nothing is that close, or when two are equally close.
func closest(name string, names map[string]string, lastPart bool) string {
	best, bestDist, tie := "", 0, false
	for spelling, key := range names {
		d := editDistance(strings.ToLower(name), strings.ToLower(spelling))
		if d > max(2, len(spelling)/4) {
			continue
		}
		switch {
		case best == "" || d < bestDist:
			best, bestDist, tie = key, d, false
		case d == bestDist:
			tie = true
		}
	}
	if best != "" || !lastPart {
		if tie {
			return ""
		}
		return best
	}
	tail := name[strings.LastIndexByte(name, '.')+1:]
	match := ""
	for spelling, key := range names {
		if spelling[strings.LastIndexByte(spelling, '.')+1:] == tail {
			if match != "" {
				return ""
			}
			match = key
		}
	}
	return match
}

// editDistance is the Levenshtein distance between a and b, in bytes (names are ASCII).
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
