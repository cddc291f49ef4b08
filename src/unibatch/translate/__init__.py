"""Translation between the lingua franca (OpenAI Chat Completions) and each provider's
native request and response shapes. One module per provider."""
