package collect

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// container is a running Docker container: its name and the PID of its
// first process, whose network namespace is the container's.
type container struct {
	Name string
	PID  int
}

// DockerSocket is the Docker engine's API socket; DOCKER_HOST overrides
// it when it names a unix socket.
var DockerSocket = "/var/run/docker.sock"

// dockerContainers lists running containers through the engine's API
// socket, or the docker CLI when the socket cannot be used. Without a
// Docker engine it returns nothing: containers are then named after
// their hostname or PID.
func (c *collector) dockerContainers(ctx context.Context) []container {
	sock := DockerSocket
	if h := os.Getenv("DOCKER_HOST"); strings.HasPrefix(h, "unix://") {
		sock = strings.TrimPrefix(h, "unix://")
	}
	if list, err := dockerAPI(ctx, sock); err == nil {
		return list
	} else if _, statErr := os.Stat(sock); statErr == nil {
		c.warnf("docker API at %s: %v; trying the docker command", sock, err)
	}
	if _, err := exec.LookPath("docker"); err != nil {
		return nil
	}
	list, err := dockerCLI(ctx)
	if err != nil {
		c.warnf("docker: %v; containers are named after their hostname", err)
	}
	return list
}

// dockerAPI asks the engine: GET /containers/json, then each container's
// State.Pid from GET /containers/ID/json (read-only calls).
func dockerAPI(ctx context.Context, sock string) ([]container, error) {
	if _, err := os.Stat(sock); err != nil {
		return nil, err
	}
	cl := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}},
	}
	get := func(path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://docker"+path, nil)
		if err != nil {
			return err
		}
		resp, err := cl.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	var list []struct {
		ID    string `json:"Id"`
		Names []string
	}
	if err := get("/containers/json", &list); err != nil {
		return nil, err
	}
	var out []container
	for _, ct := range list {
		var info struct {
			Name  string
			State struct{ Pid int }
		}
		if err := get("/containers/"+ct.ID+"/json", &info); err != nil {
			continue // gone meanwhile
		}
		if info.State.Pid > 0 {
			out = append(out, container{Name: strings.TrimPrefix(info.Name, "/"), PID: info.State.Pid})
		}
	}
	return out, nil
}

// dockerCLI is dockerAPI through `docker ps` and `docker inspect`.
func dockerCLI(ctx context.Context) ([]container, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ids, err := exec.CommandContext(ctx, "docker", "ps", "-q").Output()
	if err != nil {
		return nil, fmt.Errorf("docker ps: %w", err)
	}
	fields := strings.Fields(string(ids))
	if len(fields) == 0 {
		return nil, nil
	}
	args := append([]string{"inspect", "--format", "{{.State.Pid}} {{.Name}}"}, fields...)
	out, err := exec.CommandContext(ctx, "docker", args...).Output()
	if err != nil && len(out) == 0 {
		return nil, fmt.Errorf("docker inspect: %w", err)
	}
	var list []container
	for _, line := range strings.Split(string(out), "\n") {
		pidS, name, ok := strings.Cut(strings.TrimSpace(line), " ")
		pid, perr := strconv.Atoi(pidS)
		if ok && perr == nil && pid > 0 {
			list = append(list, container{Name: strings.TrimPrefix(name, "/"), PID: pid})
		}
	}
	return list, nil
}
