"""ex06's load runner: the registered model described, loaded and, given a socket, served.

Sent to a fresh process after coursegrader.execution.forked.IN_A_FORK, which defines in_a_fork; its
environment points MLflow at a copy of the student's store. argv: the model's URI, then, to serve it, the Unix
socket's path (in the grader's exchange folder), the questions (JSON) and the timeout in seconds; stdin: the
student's ask_served with the notebook's imports and the helpers it uses. It prints one JSON line: {"described":
{"requirements", "inputs"}, "served": {"loaded", "asked"} where it served, "loaded": a bool}.

The model's requirements and signature are read in a fork that runs no student code (MLflow reads files), then
the model is loaded, running the student's load_context, in another. When given a socket path, questions and
ask_served, that fork also serves the model with MLflow's scoring server (the app `mlflow models serve
--env-manager local` runs) on two sockets: the Unix socket, which the grader asks from outside, and
127.0.0.1:<any port>. Once the grader's request is answered, it runs ask_served against 127.0.0.1 and answers
with what it returned; a fork that only loads runs where serving did not report the model loaded.
"""
import json, os, socket, sys, threading, time
os.environ["MLFLOW_SQLALCHEMYSTORE_POOLCLASS"] = "NullPool"
import mlflow
uri = sys.argv[1]
serve_at = sys.argv[2:5]
source = sys.stdin.read()

def warm_stores():
    # the tracking and registry stores, built once here (engine, schema check: 1.4 s) for every fork to
    # inherit; NullPool: no connection stays open, so none is carried across a fork
    client = mlflow.MlflowClient()
    for search in (client.search_experiments, client.search_registered_models):
        try:
            search(max_results=1)
        except Exception:
            pass

warm_stores()

def described():
    with open(mlflow.pyfunc.get_model_dependencies(uri)) as fh:
        requirements = [line.strip() for line in fh if line.strip()]
    signature = mlflow.models.get_model_info(uri).signature
    return {"requirements": requirements,
            "inputs": signature.inputs.input_names() if signature and signature.inputs else []}

def loaded():
    mlflow.pyfunc.load_model(uri)
    return True

def served(unix_path, questions, timeout):
    import uvicorn
    from mlflow.pyfunc import scoring_server
    deadline = time.monotonic() + float(timeout)
    answered = threading.Event()

    def watched(app):
        async def middleware(scope, receive, send):
            async def sending(message):
                await send(message)
                if message.get("type") == "http.response.body" and not message.get("more_body") \
                        and scope.get("path") == "/invocations" and (scope.get("server") or (0, None))[1] is None:  # a Unix socket: no port
                    answered.set()
            await app(scope, receive, sending)
        return middleware

    app = scoring_server.init(mlflow.pyfunc.load_model(uri))
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    unix.listen(8)
    tcp = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(watched(app), log_level="warning", lifespan="off"))
    threading.Thread(target=server.run, kwargs={"sockets": [unix, tcp]}, daemon=True).start()
    answered.wait(max(0.0, deadline - time.monotonic()))
    try:
        namespace = {"__name__": "ask_served"}
        exec(compile(source, "ask_served", "exec"), namespace)
        return {"loaded": True, "asked": [str(a) for a in namespace["ask_served"](
            f"http://127.0.0.1:{tcp.getsockname()[1]}", json.loads(questions))]}
    except BaseException:
        return {"loaded": True, "asked": None}

report = {"described": in_a_fork(described)[1]}
if len(serve_at) == 3:
    report["served"] = in_a_fork(served, *serve_at)[1]
# serving loaded the model already; a load of its own only where serving did not say so
report["loaded"] = (report.get("served") or {}).get("loaded") is True or in_a_fork(loaded) == (0, True)
print(json.dumps(report))
