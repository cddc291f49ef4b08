from unibatch.cli import app

app(prog_name="unibatch")
