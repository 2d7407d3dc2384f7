// The etcd server, built from the upstream server module at the version go.mod pins: the same
// entry point etcd's own binary calls. The Kubernetes API server in ../kube stores its objects here.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
