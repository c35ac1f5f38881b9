package config

import (
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Struct tags of Config fields, read by the decoding check below.
const (
	// tagUnit names the unit of a whole-number setting ("bytes", "KiB"), for the message of a
	// value that is not one.
	tagUnit = "unit"
	// tagSecret marks a setting whose value no message may show ("true"): passwords, keys,
	// and the DSNs and URLs that may hold them.
	tagSecret = "secret"
)

// setting is one leaf of Config, or one section (a nested struct): its viper key and its
// field.
type setting struct {
	key     string
	field   reflect.StructField
	section bool
}

// settings lists the sections and leaves of Config in declaration order, each section before
// its settings, skipping derived fields (mapstructure:"-").
func settings() []setting {
	var out []setting
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			if f.Type.Kind() == reflect.Struct {
				out = append(out, setting{key: prefix + name, field: f, section: true})
				walk(f.Type, prefix+name+".")
				continue
			}
			out = append(out, setting{key: prefix + name, field: f})
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return out
}

// checkDecoding decodes every setting on its own into its field's type, with the decoder
// Unmarshal uses, and returns one error per setting whose value does not fit: each names the
// environment variable and the key, says where the value came from (the environment, the
// file, a flag) and what was expected, and shows the value unless the setting is secret. It
// also refuses what the decoder would take silently and wrongly: a bare number for a duration
// (300 in a file would be 300ns) and a number outside its field's range or with a fraction
// (300 for a uint8 would wrap to 44). The keys it returns are those of the bad settings.
// A section that is given a value of its own hides every setting in it; fatal is then set,
// since nothing else can be decoded meaningfully.
func checkDecoding(v *viper.Viper, file string, fs *pflag.FlagSet) (bad []string, errs []error, fatal bool) {
	keys := map[string]bool{}
	for _, k := range v.AllKeys() {
		keys[k] = true
	}
	for _, s := range settings() {
		if s.section {
			if err := sectionProblem(v, s, keys[s.key], file, fs); err != nil {
				errs = append(errs, err)
				fatal = true
			}
			continue
		}
		raw := v.Get(s.key)
		if raw == nil {
			continue
		}
		target := reflect.New(s.field.Type)
		if err := v.UnmarshalKey(s.key, target.Interface()); err == nil && fitsExactly(raw, s.field.Type) {
			continue
		}
		bad = append(bad, s.key)
		msg := fmt.Sprintf("%s (key %s, %s): must be %s", EnvName(s.key), s.key, sourceOf(v, s.key, file, fs), expected(s.field))
		if s.field.Tag.Get(tagSecret) != "true" {
			msg += ", got " + shown(raw)
		}
		errs = append(errs, errors.New(msg))
	}
	return bad, errs, fatal
}

// sectionProblem reports a section (a nested struct of Config) given a value of its own, which
// hides all its settings from viper, defaults included, so that they would fail for no fault
// of their own. listed says whether viper lists the section among its keys, which it does
// only when a layer (the file) gives it a value. No value is shown: it may be a setting's
// secret put under the wrong name (redis: "redis://:password@host").
func sectionProblem(v *viper.Viper, s setting, listed bool, file string, fs *pflag.FlagSet) error {
	env := EnvName(s.key)
	// With automatic environment variables, viper takes a variable named after a section
	// (APP_REDIS) to hide every setting of it that the environment does not set itself.
	if value, ok := os.LookupEnv(env); ok && value != "" {
		return fmt.Errorf("%s: is no setting but names the section %s (%s_*); set in the environment, it hides the defaults of all its settings: unset it",
			env, s.key, env)
	}
	if !listed {
		return nil
	}
	if raw := v.Get(s.key); raw != nil && reflect.ValueOf(raw).Kind() != reflect.Map {
		return fmt.Errorf("%s_* (section %s, %s): must be a section of settings such as %s, not a single value",
			env, s.key, sourceOf(v, s.key, file, fs), firstSetting(s))
	}
	return nil
}

// firstSetting names the first setting of a section, for the example of its message.
func firstSetting(section setting) string {
	for _, s := range settings() {
		if !s.section && strings.HasPrefix(s.key, section.key+".") {
			return s.key
		}
	}
	return section.key + ".*"
}

var durationType = reflect.TypeFor[time.Duration]()

// fitsExactly reports whether raw, which the decoder has accepted for a field of type t,
// means what it says there: a duration has a unit (or is zero), and a number given as a
// number (in a file) is whole and within the field's range. Strings are checked by the
// decoder itself (strconv with the field's bit size).
func fitsExactly(raw any, t reflect.Type) bool {
	rv := reflect.ValueOf(raw)
	if t == durationType {
		switch rv.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return rv.Type() == durationType || rv.Int() == 0
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return rv.Uint() == 0
		case reflect.Float32, reflect.Float64:
			return rv.Float() == 0
		}
		return true
	}
	signed := false
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		signed = true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
	default:
		return true
	}
	field := reflect.New(t).Elem()
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := rv.Int()
		if signed {
			return !field.OverflowInt(n)
		}
		return n >= 0 && !field.OverflowUint(uint64(n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n := rv.Uint()
		if signed {
			return n <= math.MaxInt64 && !field.OverflowInt(int64(n))
		}
		return !field.OverflowUint(n)
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			return false
		}
		if signed {
			return f >= math.MinInt64 && f < math.MaxInt64 && !field.OverflowInt(int64(f))
		}
		return f >= 0 && f < math.MaxUint64 && !field.OverflowUint(uint64(f))
	}
	return true
}

// expected says what a field takes, in the words of the message "must be ...".
func expected(f reflect.StructField) string {
	t := f.Type
	if t == durationType {
		return "a duration with a unit, such as 500ms, 30s, 5m or 1h30m"
	}
	unit := ""
	switch u := f.Tag.Get(tagUnit); u {
	case "bytes":
		unit = " of bytes, without a unit suffix (64 MiB is 67108864)"
	case "":
	default:
		unit = " of " + u
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number" + unit
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return fmt.Sprintf("a whole number%s from %d to %d", unit, -(int64(1) << (bits - 1)), int64(1)<<(bits-1)-1)
	case reflect.Uint, reflect.Uint64:
		return "a whole number" + unit + " (not negative)"
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return fmt.Sprintf("a whole number%s from 0 to %d", unit, uint64(1)<<t.Bits()-1)
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list (comma-separated in an environment variable or a flag)"
	case reflect.String:
		return "a single value, not a list or a section"
	default:
		return "a " + t.String()
	}
}

// sourceOf says where viper took key's value from, in viper's order of precedence: a flag
// set on the command line, the environment, the configuration file, the defaults.
func sourceOf(v *viper.Viper, key, file string, fs *pflag.FlagSet) string {
	if fs != nil {
		from := ""
		fs.VisitAll(func(f *pflag.Flag) {
			if keys := f.Annotations[FlagKeyAnnotation]; from == "" && f.Changed && len(keys) == 1 && keys[0] == key {
				from = "set by flag --" + f.Name
			}
		})
		if from != "" {
			return from
		}
	}
	if value, ok := os.LookupEnv(EnvName(key)); ok && value != "" {
		return "set in the environment"
	}
	if file != "" && v.InConfig(key) {
		return "set in " + file
	}
	return "its default"
}

// maxShown bounds the part of a bad value a message shows.
const maxShown = 64

// shown renders a bad, non-secret value for a message: strings quoted (so spaces and control
// characters are visible) and cut to maxShown bytes, lists and sections by their kind only.
func shown(raw any) string {
	switch r := raw.(type) {
	case string:
		if len(r) > maxShown {
			cut := maxShown
			for cut > 0 && !utf8.RuneStart(r[cut]) {
				cut--
			}
			return strconv.Quote(r[:cut]) + "..."
		}
		return strconv.Quote(r)
	}
	switch reflect.ValueOf(raw).Kind() {
	case reflect.Map, reflect.Struct:
		return "a section"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	s := fmt.Sprint(raw)
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return s
}
