package config

import "testing"

// TestEverySettingHasADefault: Defaults is the one list of settings, and the decoding check
// puts a setting whose value does not decode back to its default so that the rest can still
// be validated; every leaf of Config must be in it, and nothing else.
func TestEverySettingHasADefault(t *testing.T) {
	defaults := Defaults()
	leaves := map[string]bool{}
	for _, s := range settings() {
		if s.section {
			continue
		}
		leaves[s.key] = true
		if _, ok := defaults[s.key]; !ok {
			t.Errorf("%s (%s) has no default", s.key, EnvName(s.key))
		}
	}
	for key := range defaults {
		if !leaves[key] {
			t.Errorf("default %s is no setting of Config", key)
		}
	}
}
