package deploy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/acme/postsvc/config"
)

// object is one Kubernetes manifest with only the fields the checks read.
type object struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metadata          `json:"metadata"`
	Data       map[string]string `json:"data"`
	StringData map[string]string `json:"stringData"`
	Spec       json.RawMessage   `json:"spec"`
	file       string
}

type metadata struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type workloadSpec struct {
	Selector *struct {
		MatchLabels map[string]string `json:"matchLabels"`
	} `json:"selector"`
	Template podTemplate `json:"template"`
}

type podTemplate struct {
	Metadata metadata `json:"metadata"`
	Spec     podSpec  `json:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
	RestartPolicy                 string `json:"restartPolicy"`
	SecurityContext               struct {
		RunAsNonRoot *bool  `json:"runAsNonRoot"`
		RunAsUser    *int64 `json:"runAsUser"`
	} `json:"securityContext"`
	Containers     []container `json:"containers"`
	InitContainers []container `json:"initContainers"`
}

type container struct {
	Name    string   `json:"name"`
	Image   string   `json:"image"`
	Command []string `json:"command"`
	Args    []string `json:"args"`
	Ports   []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `json:"name"`
		} `json:"configMapRef"`
		SecretRef *struct {
			Name string `json:"name"`
		} `json:"secretRef"`
	} `json:"envFrom"`
	Env []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `json:"name"`
				Key      string `json:"key"`
				Optional bool   `json:"optional"`
			} `json:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `json:"name"`
				Key  string `json:"key"`
			} `json:"configMapKeyRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
	} `json:"volumeMounts"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	StartupProbe   *probe `json:"startupProbe"`
	Resources      struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"`
	} `json:"httpGet"`
	Exec *struct {
		Command []string `json:"command"`
	} `json:"exec"`
	TCPSocket *struct {
		Port any `json:"port"`
	} `json:"tcpSocket"`
}

type serviceSpec struct {
	Selector map[string]string `json:"selector"`
	Ports    []struct {
		Port       int `json:"port"`
		TargetPort any `json:"targetPort"`
	} `json:"ports"`
}

// resolvePort returns the number a Service targetPort or a probe port names in c: a number
// as is, a name through c's named container ports (0 when c has no such port).
func resolvePort(c container, v any) int {
	switch p := v.(type) {
	case float64:
		return int(p)
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		n, _ := strconv.Atoi(p)
		return n
	}
	return 0
}

type kustomization struct {
	Resources []string `json:"resources"`
	Images    []struct {
		Name string `json:"name"`
	} `json:"images"`
}

const base = "deployments/k8s/base"

// appName is the name of the service's own Deployment and Service in the base (the Redis
// beside them has its own).
const appName = "postsvc"

// opsPortName is the container port of the operations listener (APP_HTTP_OPS_ADDR).
const opsPortName = "metrics"

// loadBase reads kustomization.yaml and every resource it lists, failing for a listed file
// that is missing or does not parse.
func loadBase(t *testing.T) (kustomization, []object) {
	t.Helper()
	var k kustomization
	if err := yaml.Unmarshal(read(t, base+"/kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if len(k.Resources) == 0 {
		t.Fatal("kustomization.yaml lists no resources")
	}
	var objs []object
	for _, res := range k.Resources {
		data, err := os.ReadFile(filepath.Join(root(t), base, res))
		if err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", res, err)
			continue
		}
		for _, doc := range splitYAML(t, data) {
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				t.Fatalf("%s: %v", res, err)
			}
			if o.Kind == "" || o.APIVersion == "" || o.Metadata.Name == "" {
				t.Errorf("%s: a document without apiVersion, kind or name", res)
			}
			o.file = res
			objs = append(objs, o)
		}
	}
	return k, objs
}

// splitYAML splits a multi-document YAML file.
func splitYAML(t *testing.T, data []byte) [][]byte {
	t.Helper()
	var docs [][]byte
	dec := yamlv3.NewDecoder(bytes.NewReader(data))
	for {
		var n yamlv3.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := yamlv3.Marshal(&n)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, b)
	}
}

func find(t *testing.T, objs []object, kind string) []object {
	t.Helper()
	var out []object
	for _, o := range objs {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// byName returns the object of that kind and name, failing the test when there is none.
func byName(t *testing.T, objs []object, kind, name string) object {
	t.Helper()
	for _, o := range find(t, objs, kind) {
		if o.Metadata.Name == name {
			return o
		}
	}
	t.Fatalf("the base has no %s %s", kind, name)
	return object{}
}

func one(t *testing.T, objs []object, kind string) object {
	t.Helper()
	found := find(t, objs, kind)
	if len(found) != 1 {
		t.Fatalf("want exactly one %s in the base, found %d", kind, len(found))
	}
	return found[0]
}

func spec[T any](t *testing.T, o object) T {
	t.Helper()
	var s T
	if err := json.Unmarshal(o.Spec, &s); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Metadata.Name, err)
	}
	return s
}

// selects reports whether every selector label is on the pod.
func selects(selector, podLabels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if podLabels[k] != v {
			return false
		}
	}
	return true
}

// containerEnv is what a container sees: the ConfigMaps it loads plus its own env; values
// from secrets are marked.
func containerEnv(t *testing.T, c container, configMaps map[string]map[string]string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			data, ok := configMaps[ef.ConfigMapRef.Name]
			if !ok {
				t.Errorf("container %s loads ConfigMap %q, which the base does not define", c.Name, ef.ConfigMapRef.Name)
			}
			maps.Copy(env, data)
		case ef.SecretRef != nil:
			t.Errorf("container %s loads a whole Secret; reference each key, so only known settings are set", c.Name)
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			env[e.Name] = "<secret " + e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key + ">"
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			env[e.Name] = configMaps[e.ValueFrom.ConfigMapKeyRef.Name][e.ValueFrom.ConfigMapKeyRef.Key]
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

func assertHardened(t *testing.T, where string, p podSpec) {
	t.Helper()
	if p.SecurityContext.RunAsNonRoot == nil || !*p.SecurityContext.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
	}
	if p.SecurityContext.RunAsUser != nil && *p.SecurityContext.RunAsUser == 0 {
		t.Errorf("%s: runs as uid 0", where)
	}
	for _, c := range p.Containers {
		sc := c.SecurityContext
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem is not true", where, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation is not false", where, c.Name)
		}
		if !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s/%s: capabilities are not all dropped", where, c.Name)
		}
		for _, kind := range []string{"requests", "limits"} {
			r := c.Resources.Requests
			if kind == "limits" {
				r = c.Resources.Limits
			}
			if r["cpu"] == "" || r["memory"] == "" {
				t.Errorf("%s/%s: resources.%s must set cpu and memory, got %v", where, c.Name, kind, r)
			}
		}
	}
}

// secretRefs returns the secret/key references of a container's env.
func secretRefs(c container) map[string]string {
	out := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !e.ValueFrom.SecretKeyRef.Optional {
			out[e.Name] = e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key
		}
	}
	return out
}

func TestKubernetesBase(t *testing.T) {
	k, objs := loadBase(t)

	kinds := map[string]string{
		"Deployment": "apps/v1", "Service": "v1", "ConfigMap": "v1", "Job": "batch/v1",
		"HorizontalPodAutoscaler": "autoscaling/v2", "PodDisruptionBudget": "policy/v1",
	}
	for kind, apiVersion := range kinds {
		found := find(t, objs, kind)
		if len(found) == 0 {
			t.Errorf("the base has no %s", kind)
		}
		for _, o := range found {
			if o.APIVersion != apiVersion {
				t.Errorf("%s %s: apiVersion %s, want %s", kind, o.Metadata.Name, o.APIVersion, apiVersion)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	configMaps := map[string]map[string]string{}
	for _, cm := range find(t, objs, "ConfigMap") {
		configMaps[cm.Metadata.Name] = cm.Data
		assertKnownEnv(t, "ConfigMap "+cm.Metadata.Name, cm.Data)
	}

	dep := byName(t, objs, "Deployment", appName)
	ds := spec[workloadSpec](t, dep)
	pod := ds.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("the Deployment has %d containers, want 1", len(pod.Containers))
	}
	app := pod.Containers[0]
	if ds.Selector == nil || !selects(ds.Selector.MatchLabels, ds.Template.Metadata.Labels) {
		t.Errorf("the Deployment's selector does not match its pod labels")
	}
	assertHardened(t, "Deployment", pod)

	appEnv := containerEnv(t, app, configMaps)
	assertKnownEnv(t, "Deployment", appEnv)
	for _, name := range []string{"APP_AUTH_JWT_SECRET", "APP_DATABASE_DSN"} {
		if !strings.HasPrefix(appEnv[name], "<secret ") {
			t.Errorf("Deployment: %s must come from a Secret (secretKeyRef), got %q", name, appEnv[name])
		}
	}
	if appEnv["APP_DATABASE_MIGRATE_ON_START"] != "false" {
		t.Errorf("Deployment: APP_DATABASE_MIGRATE_ON_START=%q, want false (the Job migrates)", appEnv["APP_DATABASE_MIGRATE_ON_START"])
	}

	t.Run("settings load", func(t *testing.T) {
		env := map[string]string{}
		for k, v := range appEnv {
			if strings.HasPrefix(k, config.EnvPrefix+"_") {
				env[k] = v
			}
		}
		env["APP_AUTH_JWT_SECRET"] = strings.Repeat("k", config.MinSecretBytes)
		env["APP_DATABASE_DSN"] = "u:p@tcp(mysql:3306)/postsvc"
		assertLoads(t, "Deployment", env)
	})

	t.Run("ports", func(t *testing.T) {
		addr := appEnv["APP_HTTP_ADDR"]
		if addr == "" {
			addr = config.Defaults()["http.addr"].(string)
		}
		listen := portOf(t, addr)
		// The operations listener, when the settings turn it on, is the container port named
		// opsPortName; every other port is the API's.
		opsAddr, ops := appEnv[config.EnvName("http.ops_addr")], 0
		if opsAddr != "" {
			ops = portOf(t, opsAddr)
		}
		named := map[string]int{}
		for _, p := range app.Ports {
			named[p.Name] = p.ContainerPort
			switch {
			case p.Name == opsPortName && p.ContainerPort != ops:
				t.Errorf("container port %q is %d, but %s is %q", opsPortName, p.ContainerPort, config.EnvName("http.ops_addr"), opsAddr)
			case p.Name != opsPortName && p.ContainerPort != listen:
				t.Errorf("containerPort %d, but the service listens on %s", p.ContainerPort, addr)
			}
		}
		if len(app.Ports) == 0 {
			t.Fatal("the container declares no port")
		}
		if ops != 0 && named[opsPortName] != ops {
			t.Errorf("%s=%q, but no container port named %q declares %d", config.EnvName("http.ops_addr"), opsAddr, opsPortName, ops)
		}
		// Pods discovered by annotation are scraped where /metrics is served: the operations
		// port when there is one (the API's port then answers 404), the API's otherwise.
		if ann := ds.Template.Metadata.Annotations; ann["prometheus.io/scrape"] == "true" {
			want := listen
			if ops != 0 {
				want = ops
			}
			if ann["prometheus.io/port"] != strconv.Itoa(want) || ann["prometheus.io/path"] != "/metrics" {
				t.Errorf("prometheus.io annotations scrape port %q path %q, but /metrics is served on %d",
					ann["prometheus.io/port"], ann["prometheus.io/path"], want)
			}
		}
		resolve := func(v any) int {
			switch p := v.(type) {
			case float64:
				return int(p)
			case string:
				if n, ok := named[p]; ok {
					return n
				}
				n, _ := strconv.Atoi(p)
				return n
			}
			return 0
		}
		// Every Service port leads to the API's port, so the operations listener is never
		// reachable through the Service.
		svc := byName(t, objs, "Service", appName)
		ss := spec[serviceSpec](t, svc)
		if !selects(ss.Selector, ds.Template.Metadata.Labels) {
			t.Errorf("the Service selector %v does not select the Deployment's pods %v", ss.Selector, ds.Template.Metadata.Labels)
		}
		for _, p := range ss.Ports {
			if got := resolve(p.TargetPort); got != listen {
				t.Errorf("Service targetPort %v resolves to %d, want %d", p.TargetPort, got, listen)
			}
		}
		// The probes go to the operations listener when there is one: the API's port refuses
		// connections past its cap during a flood (APP_HTTP_MAX_CONNECTIONS counts each
		// listener apart), and a probe refused there would restart a pod that is well.
		probed := listen
		if ops != 0 {
			probed = ops
		}
		for name, pr := range map[string]*probe{"liveness": app.LivenessProbe, "readiness": app.ReadinessProbe, "startup": app.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil && resolve(pr.HTTPGet.Port) != probed {
				t.Errorf("%s probe port %v is not %d, where the probes must go (the operations listener when there is one)", name, pr.HTTPGet.Port, probed)
			}
		}
		// The Dockerfile exposes the same port.
		ins := parseDockerfile(t, read(t, "deployments/Dockerfile"))
		for _, in := range ins {
			if in.cmd == "EXPOSE" && in.args != strconv.Itoa(listen) {
				t.Errorf("Dockerfile EXPOSE %s, Deployment listens on %d", in.args, listen)
			}
		}
		// The migration Job's pods must not receive Service traffic.
		for _, job := range find(t, objs, "Job") {
			js := spec[workloadSpec](t, job)
			if selects(ss.Selector, js.Template.Metadata.Labels) {
				t.Errorf("the Service selects the pods of Job %s", job.Metadata.Name)
			}
		}
	})

	t.Run("probes", func(t *testing.T) {
		if app.LivenessProbe == nil || app.LivenessProbe.HTTPGet == nil || app.LivenessProbe.HTTPGet.Path != "/livez" {
			t.Errorf("liveness probe must GET /livez (it checks nothing external): %+v", app.LivenessProbe)
		}
		if app.ReadinessProbe == nil || app.ReadinessProbe.HTTPGet == nil || app.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("readiness probe must GET /readyz: %+v", app.ReadinessProbe)
		}
		for name, pr := range map[string]*probe{"liveness": app.LivenessProbe, "readiness": app.ReadinessProbe, "startup": app.StartupProbe} {
			if pr != nil && pr.HTTPGet != nil {
				assertProbePath(t, name+" probe", pr.HTTPGet.Path)
			}
		}
	})

	t.Run("image storage", func(t *testing.T) {
		// The API opens its object store at start. The filesystem store would be a folder
		// per pod (and the read-only root file system refuses to make it): the replicas the
		// HPA runs must share a bucket.
		if d := appEnv["APP_STORAGE_DRIVER"]; d != "s3" {
			t.Errorf("Deployment: APP_STORAGE_DRIVER=%q, want s3: the replicas must share their images", d)
		}
		if appEnv["APP_STORAGE_S3_BUCKET"] == "" {
			t.Error("Deployment: no APP_STORAGE_S3_BUCKET")
		}
	})

	t.Run("spool", func(t *testing.T) {
		// ECG uploads beyond the spool's memory wait in files under APP_ECG_SPOOL_DIR (the
		// system's temporary folder by default), which the service makes at start: on a
		// read-only root file system something writable must be mounted there.
		dir := appEnv["APP_ECG_SPOOL_DIR"]
		if dir == "" {
			dir = "/tmp"
		}
		mounted := false
		for _, m := range app.VolumeMounts {
			mounted = mounted || m.MountPath == dir
		}
		if !mounted {
			t.Errorf("nothing is mounted at %s, where ECG uploads spool, and the root file system is read-only", dir)
		}
	})

	t.Run("shutdown", func(t *testing.T) {
		need := shutdownNeed(t, appEnv)
		tgp := 30 * time.Second // the Kubernetes default
		if pod.TerminationGracePeriodSeconds != nil {
			tgp = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		}
		if tgp <= need {
			t.Errorf("terminationGracePeriodSeconds %s must exceed the longer of HTTP shutdown delay + grace and the jobs' grace (%s), or the kubelet kills requests and jobs in flight", tgp, need)
		}
	})

	t.Run("migration job", func(t *testing.T) {
		job := one(t, objs, "Job")
		js := spec[workloadSpec](t, job)
		assertHardened(t, "Job", js.Template.Spec)
		if p := js.Template.Spec.RestartPolicy; p != "Never" && p != "OnFailure" {
			t.Errorf("Job restartPolicy %q", p)
		}
		if len(js.Template.Spec.Containers) != 1 {
			t.Fatalf("the Job has %d containers", len(js.Template.Spec.Containers))
		}
		mc := js.Template.Spec.Containers[0]
		argv := append(slices.Clone(mc.Command), mc.Args...)
		if !slices.Equal(argv, []string{"migrate", "up"}) {
			t.Errorf("the Job runs %q, want [migrate up] (with the image's entrypoint)", argv)
		}
		if mc.Image != app.Image {
			t.Errorf("the Job runs image %q, the Deployment %q", mc.Image, app.Image)
		}
		jobEnv := containerEnv(t, mc, configMaps)
		assertKnownEnv(t, "Job", jobEnv)
		if !maps.Equal(secretRefs(mc), secretRefs(app)) {
			t.Errorf("the Job's secret references %v differ from the Deployment's %v", secretRefs(mc), secretRefs(app))
		}
		if jobEnv["APP_DATABASE_DRIVER"] != appEnv["APP_DATABASE_DRIVER"] {
			t.Errorf("the Job migrates driver %q, the Deployment uses %q", jobEnv["APP_DATABASE_DRIVER"], appEnv["APP_DATABASE_DRIVER"])
		}
	})

	t.Run("autoscaling and disruption", func(t *testing.T) {
		hpa := spec[struct {
			ScaleTargetRef struct {
				APIVersion, Kind, Name string
			} `json:"scaleTargetRef"`
			MinReplicas *int `json:"minReplicas"`
			MaxReplicas int  `json:"maxReplicas"`
		}](t, one(t, objs, "HorizontalPodAutoscaler"))
		if hpa.ScaleTargetRef.Kind != "Deployment" || hpa.ScaleTargetRef.Name != dep.Metadata.Name {
			t.Errorf("the HPA scales %s %s, not the Deployment %s", hpa.ScaleTargetRef.Kind, hpa.ScaleTargetRef.Name, dep.Metadata.Name)
		}
		if hpa.MinReplicas == nil || *hpa.MinReplicas < 2 || hpa.MaxReplicas < *hpa.MinReplicas {
			t.Errorf("HPA replicas min %v max %d: want at least 2 so the PodDisruptionBudget can allow an eviction", hpa.MinReplicas, hpa.MaxReplicas)
		}
		var raw map[string]any
		_ = json.Unmarshal(dep.Spec, &raw)
		if _, ok := raw["replicas"]; ok {
			t.Error("the Deployment sets replicas, which fights the HPA on every apply")
		}
		pdb := spec[struct {
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"selector"`
			MinAvailable   any `json:"minAvailable"`
			MaxUnavailable any `json:"maxUnavailable"`
		}](t, one(t, objs, "PodDisruptionBudget"))
		if !selects(pdb.Selector.MatchLabels, ds.Template.Metadata.Labels) {
			t.Errorf("the PodDisruptionBudget selector %v does not select the Deployment's pods", pdb.Selector.MatchLabels)
		}
		if (pdb.MinAvailable == nil) == (pdb.MaxUnavailable == nil) {
			t.Error("the PodDisruptionBudget must set exactly one of minAvailable and maxUnavailable")
		}
	})

	t.Run("redis", func(t *testing.T) {
		// The instances share a Redis of the base, through its Service.
		raw := appEnv["APP_REDIS_URL"]
		if raw == "" {
			t.Fatal("the Deployment sets no APP_REDIS_URL: instances would share no Redis")
		}
		host, port := redisTarget(t, "Deployment", raw)
		svcName, _, _ := strings.Cut(host, ".") // name, name.namespace or name.namespace.svc...
		svc := byName(t, objs, "Service", svcName)
		ss := spec[serviceSpec](t, svc)
		var target any
		for _, p := range ss.Ports {
			if p.Port == port {
				target = p.TargetPort
			}
		}
		if target == nil {
			t.Fatalf("APP_REDIS_URL=%q: Service %s has no port %d", raw, svcName, port)
		}
		var redisDeps []object
		for _, d := range find(t, objs, "Deployment") {
			if selects(ss.Selector, spec[workloadSpec](t, d).Template.Metadata.Labels) {
				redisDeps = append(redisDeps, d)
			}
		}
		if len(redisDeps) != 1 || redisDeps[0].Metadata.Name == dep.Metadata.Name {
			t.Fatalf("Service %s must select the pods of exactly one Deployment, Redis's own; it selects %d", svcName, len(redisDeps))
		}
		rdep := redisDeps[0]
		rs := spec[workloadSpec](t, rdep)
		where := "Deployment " + rdep.Metadata.Name
		if rs.Selector == nil || !selects(rs.Selector.MatchLabels, rs.Template.Metadata.Labels) {
			t.Errorf("%s: the selector does not match its pod labels", where)
		}
		assertHardened(t, where, rs.Template.Spec)
		var raws map[string]any
		_ = json.Unmarshal(rdep.Spec, &raws)
		if r, ok := raws["replicas"]; ok && r != float64(1) {
			t.Errorf("%s: replicas %v; one Redis is shared by every instance", where, r)
		}
		if len(rs.Template.Spec.Containers) != 1 {
			t.Fatalf("%s has %d containers, want 1", where, len(rs.Template.Spec.Containers))
		}
		rc := rs.Template.Spec.Containers[0]
		assertRedisImage(t, where, rc.Image)
		listen := redisServerPort(t, where, append(slices.Clone(rc.Command), rc.Args...))
		if got := resolvePort(rc, target); got != listen {
			t.Errorf("Service %s port %d leads to %d, but Redis listens on %d", svcName, port, got, listen)
		}
		assertKnownEnv(t, where, containerEnv(t, rc, configMaps))
		var probeCmd []string
		if rp := rc.ReadinessProbe; rp != nil && rp.Exec != nil {
			probeCmd = rp.Exec.Command
		}
		if !slices.Contains(probeCmd, "redis-cli") || !slices.Contains(probeCmd, "ping") {
			t.Errorf("%s: the readiness probe must run redis-cli ping, not exec %q", where, probeCmd)
		}
		if pr := rc.LivenessProbe; pr != nil && pr.TCPSocket != nil && resolvePort(rc, pr.TCPSocket.Port) != listen {
			t.Errorf("%s: the liveness probe checks port %v, Redis listens on %d", where, pr.TCPSocket.Port, listen)
		}

		// The service runs degraded without Redis: nothing makes its pods wait for Redis or
		// go unready with it. Its readiness is /readyz (checked above), which does not ask
		// Redis, and no init container holds the pods back.
		for _, ic := range pod.InitContainers {
			t.Errorf("the Deployment's init container %s would hold its pods back (e.g. until Redis answers); the service must start without Redis", ic.Name)
		}
		// The API's Service and PodDisruptionBudget leave the Redis pods alone.
		if selects(spec[serviceSpec](t, byName(t, objs, "Service", appName)).Selector, rs.Template.Metadata.Labels) {
			t.Errorf("Service %s selects the Redis pods", appName)
		}
		for _, pdb := range find(t, objs, "PodDisruptionBudget") {
			var p struct {
				Selector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"selector"`
			}
			_ = json.Unmarshal(pdb.Spec, &p)
			if selects(p.Selector.MatchLabels, rs.Template.Metadata.Labels) {
				t.Errorf("PodDisruptionBudget %s selects the Redis pods", pdb.Metadata.Name)
			}
		}
	})

	t.Run("images", func(t *testing.T) {
		var names []string
		for _, img := range k.Images {
			names = append(names, img.Name)
		}
		if !slices.Contains(names, app.Image) {
			t.Errorf("kustomization images %v do not set the Deployment's image %q", names, app.Image)
		}
	})
}

// TestNoSecretValuesCommitted fails when any file under deployments/ defines a Secret with
// data: secret values are created in the cluster, never committed.
func TestNoSecretValuesCommitted(t *testing.T) {
	dir := filepath.Join(root(t), "deployments")
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (!strings.HasSuffix(path, ".yaml") && !strings.HasSuffix(path, ".yml")) {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, doc := range splitYAML(t, data) {
			var o object
			if yaml.Unmarshal(doc, &o) == nil && o.Kind == "Secret" && (len(o.Data) > 0 || len(o.StringData) > 0) {
				t.Errorf("%s defines Secret %s with values", path, o.Metadata.Name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
