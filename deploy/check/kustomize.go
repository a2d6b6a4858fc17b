package main

import (
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/kustomize/api/krusty"
	kustomize "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// checkKustomizations checks each kustomization: every resource it lists exists, every
// manifest beside it is listed (a file left out would silently never be applied), and
// kustomize's own library builds it.
func (r *Report) checkKustomizations() {
	for _, d := range r.Docs {
		k, ok := d.Obj.(*kustomize.Kustomization)
		if !ok {
			continue
		}
		dir := path.Dir(d.File)
		abs := filepath.Join(r.Root, filepath.FromSlash(dir))
		listed := map[string]bool{}
		for i, res := range k.Resources {
			if strings.Contains(res, "://") {
				r.problem(d, "resources", "entry %d %q is remote: the base must build offline", i, res)
				continue
			}
			if _, err := os.Stat(filepath.Join(abs, filepath.FromSlash(res))); err != nil {
				r.problem(d, "resources", "entry %d %q does not exist", i, res)
				continue
			}
			listed[path.Clean(path.Join(dir, res))] = true
		}
		var sources int
		for _, o := range r.Docs {
			if path.Dir(o.File) != dir || o == d || o.Kind == "Kustomization" {
				continue
			}
			if !listed[o.File] {
				if o.Index == 1 {
					r.problem(d, "resources", "%s is beside the kustomization but not listed in resources", path.Base(o.File))
				}
				continue
			}
			sources++
		}
		resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
		if err != nil {
			r.problem(d, "", "kustomize build fails: %v", err)
			continue
		}
		if n := resMap.Size(); n != sources {
			var ids []string
			for _, res := range resMap.Resources() {
				ids = append(ids, res.CurId().String())
			}
			sort.Strings(ids)
			r.problem(d, "", "kustomize build gives %d objects but the listed files hold %d documents: %s", n, sources, strings.Join(ids, ", "))
		}
	}
}
