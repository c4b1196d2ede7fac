"""The MLflow quickstart, with one word changed: ``import runyard as mlflow``."""

import random

import runyard as mlflow

mlflow.set_experiment("quick-exp")
with mlflow.start_run(run_name="quickstart") as run:
    mlflow.log_param("p", 5)
    mlflow.log_params({"lr": 0.01, "epochs": 20})
    for epoch in range(20):
        mlflow.log_metric("loss", 1.0 / (epoch + 1) + random.random() * 0.01, step=epoch)
    mlflow.log_metric("m", 0.92)
    with open("out.txt", "w") as f:
        f.write("hello")
    mlflow.log_artifact("out.txt")
    mlflow.log_dict({"features": ["x1", "x2"]}, "config/features.json")

client = mlflow.MlflowClient()
runs = client.search_runs([run.info.experiment_id], "metrics.m > 0.9")
print(f"run {run.info.run_id} finished; {len(runs)} run(s) with m > 0.9")
