# frozen_string_literal: true

# The faas Ruby runtime: a Lambda Runtime API client that runs inside the container.
#
# Ruby's standard library only (socket, json). It speaks HTTP/1.1 (keep-alive,
# Content-Length bodies) over the unix socket the platform mounts at /run/faas/runtime.sock,
# as runtimes/python/faas_bootstrap.py does:
#
# 1. GET /faas/v1/environment -> {"handler": "function.handler", "env": {...}}; blocks until
#    the platform gives this (possibly pre-started) container a function.
# 2. load the handler file once; on failure POST /2018-06-01/runtime/init/error and exit 1.
# 3. loop: GET .../invocation/next, call handler(event:, context:), POST .../response or .../error.
#
# Handlers, the context object and the error shapes follow Lambda's Ruby runtime (AWS's
# aws_lambda_ric): `file.method` or `file.Module::Class.method`, keyword arguments event: and
# context:, errors as {"errorMessage", "errorType": "Function<Class>", "stackTrace"}, init
# errors as "Init<Class>".

require "socket"
require "json"

module FaasRuntime
  RUNTIME_API = "/2018-06-01/runtime"
  ENVIRONMENT_PATH = "/faas/v1/environment"
  DEFAULT_SOCKET = "/run/faas/runtime.sock"
  CONNECT_WAIT_S = 5.0 # the platform creates the socket before starting the container
  AWS_RELAY_PORT = 9002 # AWS_ENDPOINT_URL_LAMBDA's port on this container's own loopback
  # Faas-Direct: 2: this client uses its one connection strictly in turn and keeps what it
  # reads past a response, so the platform may send the answer to a result together with
  # the next event (one write and one wake-up per warm call).
  DIRECT = { "Faas-Direct" => "2" }.freeze

  # The Runtime API connection failed; the container cannot go on.
  class RuntimeAPIError < StandardError; end

  # A minimal keep-alive HTTP/1.1 client on one unix socket connection.
  class Client
    def initialize(path)
      @path = path
      @sock = nil
      @buf = +"".b
    end

    def close
      @sock&.close
      @sock = nil
    end

    # One request; returns [status, headers with lower-case names, body bytes].
    def request(method, path, body = "", headers = nil)
      head = +"#{method} #{path} HTTP/1.1\r\nHost: localhost\r\n"
      headers&.each { |name, value| head << "#{name}: #{value}\r\n" }
      head << "Content-Length: #{body.bytesize}\r\n" unless method == "GET"
      data = head.b << "\r\n" << body.b
      2.times do |attempt|
        reused = !@sock.nil?
        connect unless reused
        begin
          @sock.write(data)
          return response
        rescue SystemCallError, IOError, RuntimeAPIError => e
          # The platform may have closed an idle kept-alive connection: one retry.
          close
          raise RuntimeAPIError, "Runtime API #{method} #{path} failed: #{e.message}" if attempt == 1 || !reused
        end
      end
    end

    private

    def connect
      deadline = monotonic + CONNECT_WAIT_S
      begin
        @sock = UNIXSocket.new(@path)
        @buf = +"".b
      rescue Errno::ENOENT, Errno::ECONNREFUSED => e
        raise RuntimeAPIError, "cannot connect to the Runtime API at #{@path}: #{e.message}" if monotonic > deadline

        sleep 0.005
        retry
      end
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    def fill
      chunk = @sock.readpartial(65_536)
      @buf << chunk
    rescue EOFError
      raise RuntimeAPIError, "the Runtime API closed the connection"
    end

    def read_exact(count)
      fill while @buf.bytesize < count
      out = @buf.byteslice(0, count)
      @buf = @buf.byteslice(count, @buf.bytesize - count)
      out
    end

    def readline
      loop do
        i = @buf.index("\r\n")
        if i
          line = @buf.byteslice(0, i)
          @buf = @buf.byteslice(i + 2, @buf.bytesize - i - 2)
          return line
        end
        fill
      end
    end

    def response
      loop do
        head_end = @buf.index("\r\n\r\n")
        unless head_end
          fill
          next
        end

        lines = @buf.byteslice(0, head_end).split("\r\n")
        @buf = @buf.byteslice(head_end + 4, @buf.bytesize - head_end - 4)
        status = lines[0].split(" ", 3)[1].to_i
        headers = {}
        lines.drop(1).each do |line|
          name, value = line.split(":", 2)
          headers[name.strip.downcase] = value.to_s.strip
        end
        next if status < 200 # an interim answer: the real one follows
        return [status, headers, "".b] if [204, 304].include?(status)

        body = read_body(headers)
        close if headers["connection"].to_s.casecmp?("close")
        return [status, headers, body]
      end
    end

    def read_body(headers)
      return read_exact(Integer(headers["content-length"], 10)) if headers.key?("content-length")

      if headers["transfer-encoding"].to_s.casecmp?("chunked")
        body = +"".b
        loop do
          size = Integer(readline.split(";", 2)[0], 16)
          if size.zero?
            nil until readline.empty? # trailers
            return body
          end
          body << read_exact(size)
          readline
        end
      end
      body = @buf # body until the server closes
      @buf = +"".b
      loop { body << @sock.readpartial(65_536) }
    rescue EOFError
      close
      body
    end
  end

  # The context object, as Lambda's Ruby runtime builds it.
  class LambdaContext
    attr_reader :aws_request_id, :invoked_function_arn, :log_group_name, :log_stream_name,
                :function_name, :memory_limit_in_mb, :function_version, :identity,
                :client_context, :deadline_ms, :tenant_id

    def initialize(headers)
      @aws_request_id = headers["lambda-runtime-aws-request-id"]
      @invoked_function_arn = headers["lambda-runtime-invoked-function-arn"]
      @log_group_name = ENV["AWS_LAMBDA_LOG_GROUP_NAME"]
      @log_stream_name = ENV["AWS_LAMBDA_LOG_STREAM_NAME"]
      @function_name = ENV["AWS_LAMBDA_FUNCTION_NAME"]
      @memory_limit_in_mb = ENV["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
      @function_version = ENV["AWS_LAMBDA_FUNCTION_VERSION"]
      @deadline_ms = headers["lambda-runtime-deadline-ms"].to_i
      @tenant_id = headers["lambda-runtime-aws-tenant-id"]
      identity = headers["lambda-runtime-cognito-identity"]
      @identity = JSON.parse(identity) if identity && !identity.empty?
      client_context = headers["lambda-runtime-client-context"]
      @client_context = JSON.parse(client_context) if client_context && !client_context.empty?
    end

    def get_remaining_time_in_millis # rubocop:disable Naming/AccessorMethodName -- Lambda's name
      remaining = @deadline_ms - (Process.clock_gettime(Process::CLOCK_REALTIME, :millisecond))
      remaining.positive? ? remaining : 0
    end
  end

  # A failure of the handler's loading, with Lambda's Ruby error type ("Init<LoadError>").
  class InitFailure < StandardError
    attr_reader :error

    def initialize(error)
      super(error["errorMessage"])
      @error = error
    end
  end

  module_function

  # The error body of an exception, this file's frames left out, as Lambda's runtime shapes it.
  def error_body(exc, prefix)
    trace = (exc.backtrace || []).reject { |line| line.start_with?(__FILE__) }
    { "errorMessage" => exc.message.to_s, "errorType" => "#{prefix}<#{exc.class}>", "stackTrace" => trace }
  end

  def log_error(message, error)
    $stdout.write("#{message}\n#{JSON.pretty_generate(error)}\n")
    $stdout.flush
  end

  # file.method, or file.Module::Class.method: the handler as a callable taking event: and context:.
  def load_handler(name)
    parts = name.split(".")
    unless [2, 3].include?(parts.size) && parts.none?(&:empty?)
      raise InitFailure, {
        "errorMessage" => "Invalid handler #{name}, must be of form FILENAME.METHOD or FILENAME.CLASS.METHOD " \
                          "where FILENAME corresponds with an existing Ruby source file FILENAME.rb, CLASS is an " \
                          "optional module/class namespace and METHOD is a callable method.",
        "errorType" => "Init<ArgumentError>", "stackTrace" => []
      }
    end
    file, *owner, method_name = parts
    task_root = ENV["LAMBDA_TASK_ROOT"] || "/var/task"
    begin
      require File.expand_path(file, task_root)
      receiver = owner.empty? ? TOPLEVEL_BINDING.receiver : Object.const_get(owner[0])
    rescue Exception => e # rubocop:disable Lint/RescueException -- a syntax error is a ScriptError
      raise InitFailure, error_body(e, "Init")
    end
    ->(event, context) { receiver.send(method_name, event: event, context: context) }
  end

  def init(client)
    status, _, body = client.request("GET", ENVIRONMENT_PATH)
    raise RuntimeAPIError, "GET #{ENVIRONMENT_PATH} answered #{status}: #{body[0, 200]}" unless status == 200

    info = JSON.parse(body)
    (info["env"] || {}).each { |key, value| ENV[key.to_s] = value.to_s }
    handler = info["handler"] || ENV["_HANDLER"] || ""
    ENV["_HANDLER"] ||= handler
    task_root = ENV["LAMBDA_TASK_ROOT"] || "/var/task"
    begin
      Dir.chdir(task_root)
    rescue SystemCallError
      nil
    end
    # The image's RUBYLIB is on $LOAD_PATH since start; a function's own RUBYLIB goes before it,
    # and its own GEM_PATH replaces the image's for gems required from here on.
    extra = (info.dig("env", "RUBYLIB") || "").split(":").reject(&:empty?)
    $LOAD_PATH.unshift(*extra)
    Gem.paths = ENV.to_h if defined?(Gem) && info.dig("env", "GEM_PATH")
    handler
  end

  def post(client, path, body, headers)
    client.request("POST", path, body, { "Content-Type" => "application/json" }.merge(headers))
  end

  def serve(client, handler)
    next_path = "#{RUNTIME_API}/invocation/next"
    loop do
      status, headers, body = client.request("GET", next_path, "", DIRECT)
      raise RuntimeAPIError, "GET #{next_path} answered #{status}" unless status == 200

      request_id = headers["lambda-runtime-aws-request-id"].to_s
      trace_id = headers["lambda-runtime-trace-id"]
      trace_id ? ENV["_X_AMZN_TRACE_ID"] = trace_id : ENV.delete("_X_AMZN_TRACE_ID")
      base = "#{RUNTIME_API}/invocation/#{request_id}"
      begin
        event = body.empty? ? nil : JSON.parse(body.force_encoding(Encoding::UTF_8))
        result = JSON.generate(handler.call(event, LambdaContext.new(headers)))
      rescue Exception => e # rubocop:disable Lint/RescueException -- the handler's failure, whatever it is
        raise if e.is_a?(SystemExit) || e.is_a?(SignalException)

        error = error_body(e, "Function")
        log_error("Error raised from handler method", error)
        post(client, "#{base}/error", JSON.generate(error), { "Lambda-Runtime-Function-Error-Type" => error["errorType"] })
      else
        $stdout.flush
        post(client, "#{base}/response", result, {})
      end
    end
  end

  # Forward 127.0.0.1:port (this container's own loopback, so `network: none` too) to the
  # platform's Lambda API socket, in threads of this process: a function calls other functions here.
  def start_aws_relay(path, port = AWS_RELAY_PORT)
    listener = TCPServer.new("127.0.0.1", port)
    Thread.new do
      loop do
        conn = listener.accept
        Thread.new(conn) { |c| relay(c, path) }
      end
    end
  rescue SystemCallError => e
    warn "faas runtime: the Lambda API forwarder cannot listen on 127.0.0.1:#{port}: #{e.message}"
  end

  def relay(conn, path)
    up = UNIXSocket.new(path)
    upward = Thread.new do
      IO.copy_stream(conn, up)
    rescue IOError, SystemCallError
      nil
    ensure
      up.close_write rescue nil # rubocop:disable Style/RescueModifier
    end
    begin
      IO.copy_stream(up, conn)
    rescue IOError, SystemCallError
      nil
    end
    conn.shutdown(Socket::SHUT_RDWR) rescue nil # rubocop:disable Style/RescueModifier -- the platform's side ends after one answer
    upward.join
  rescue SystemCallError
    nil
  ensure
    conn.close rescue nil # rubocop:disable Style/RescueModifier
    up&.close rescue nil # rubocop:disable Style/RescueModifier
  end

  def main
    $stdout.sync = true
    $stderr.sync = true
    aws_socket = ENV.delete("FAAS_AWS_SOCKET")
    start_aws_relay(aws_socket) if aws_socket && !aws_socket.empty?
    client = Client.new(ENV["FAAS_RUNTIME_SOCKET"] || DEFAULT_SOCKET)
    begin
      handler_name = init(client)
      begin
        handler = load_handler(handler_name)
      rescue InitFailure => e
        log_error("Init error when loading handler #{handler_name}", e.error)
        post(client, "#{RUNTIME_API}/init/error", JSON.generate(e.error),
             { "Lambda-Runtime-Function-Error-Type" => e.error["errorType"] })
        exit 1
      end
      serve(client, handler)
    rescue RuntimeAPIError => e
      warn "faas runtime: #{e.message}"
      exit 1
    end
  end
end

FaasRuntime.main
