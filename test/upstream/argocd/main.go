// halb-argocd runs Argo CD's own code on halb's objects, for the tests in test/deploy:
//
//	halb-argocd health SCRIPT OBJECT...   Argo CD's Lua VM (argo-cd util/lua) with SCRIPT as the
//	                                      argocd-cm health customization of the object's kind;
//	                                      one JSON line {"status","message"} per object file
//	halb-argocd diff CONFIG LIVE          Argo CD's diff (argo-cd util/argo/diff over gitops-engine's
//	                                      three-way diff) of a manifest from Git against the object
//	                                      as the API server returns it: {"modified","normalizedLive",
//	                                      "predictedLive"}
//
// Object files are YAML or JSON. Nothing here decides a result: it only calls Argo CD.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	argodiff "github.com/argoproj/argo-cd/v3/util/argo/diff"
	"github.com/argoproj/argo-cd/v3/util/argo/normalizers"
	"github.com/argoproj/argo-cd/v3/util/lua"
)

const usage = "usage: halb-argocd health SCRIPT OBJECT... | halb-argocd diff CONFIG LIVE"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "halb-argocd:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) >= 3 && args[0] == "health":
		return health(args[1], args[2:])
	case len(args) == 3 && args[0] == "diff":
		return diff(args[1], args[2])
	}
	return fmt.Errorf("%s", usage)
}

// readObject reads a YAML or JSON file as Argo CD holds objects: unstructured, integers as int64.
func readObject(path string) (*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	asJSON, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(asJSON); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return obj, nil
}

// health evaluates each object as Argo CD's application controller does when argocd-cm carries
// resource.customizations.health.<group>_<kind>: the script is an override of that kind.
func health(scriptPath string, objectPaths []string) error {
	script, err := os.ReadFile(scriptPath)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	for _, path := range objectPaths {
		obj, err := readObject(path)
		if err != nil {
			return err
		}
		overrides := lua.ResourceHealthOverrides{
			lua.GetConfigMapKey(obj.GroupVersionKind()): v1alpha1.ResourceOverride{HealthLua: string(script)},
		}
		status, err := overrides.GetResourceHealth(obj)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if status == nil {
			return fmt.Errorf("%s: Argo CD found no health script for %s", path, obj.GroupVersionKind())
		}
		if err := out.Encode(map[string]string{"status": string(status.Status), "message": status.Message}); err != nil {
			return err
		}
	}
	return nil
}

// diff is Argo CD's comparison of one resource with its default settings: no ignoreDifferences,
// no resource overrides, annotation tracking (Argo CD 3's default), client-side (three-way) diff.
func diff(configPath, livePath string) error {
	config, err := readObject(configPath)
	if err != nil {
		return err
	}
	live, err := readObject(livePath)
	if err != nil {
		return err
	}
	diffConfig, err := argodiff.NewDiffConfigBuilder().
		WithDiffSettings(nil, nil, false, normalizers.IgnoreNormalizerOpts{}).
		WithTracking("", string(v1alpha1.TrackingMethodAnnotation)).
		WithNoCache().
		Build()
	if err != nil {
		return err
	}
	result, err := argodiff.StateDiff(live, config, diffConfig)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"modified":       result.Modified,
		"normalizedLive": json.RawMessage(result.NormalizedLive),
		"predictedLive":  json.RawMessage(result.PredictedLive),
	})
}
