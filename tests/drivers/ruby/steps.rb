# What the driver-matrix scripts share: the DSN, and steps each run in a
# child process of its own under a timeout (a child still running then is
# killed). Every step prints one line on stdout, `ok <name>` or
# `FAIL <name>: <error>`; before it starts, `... <name>` goes to stderr.
# `finish` exits 1 if any step failed.

DSN = ENV['DRIVER_DSN']
unless DSN && !DSN.empty?
  puts 'FAIL setup: DRIVER_DSN is not set (postgresql://user@host:port/db)'
  exit! 2
end
STEP_TIMEOUT = Float(ENV.fetch('DRIVER_STEP_TIMEOUT', '20'))
$failed = []
$stdout.sync = true
$stderr.sync = true

def check(cond, what)
  raise "check failed: #{what}" unless cond
end

def check_eq(want, got, what)
  raise "#{what}: want #{want.inspect}, got #{got.inspect}" unless want == got
end

def step(name, timeout = STEP_TIMEOUT)
  $stderr.puts "... #{name}"
  reader, writer = IO.pipe
  pid = fork do
    reader.close
    begin
      yield
      writer.write('')
      writer.close
      exit! 0
    rescue Exception => e # every error is the step's
      $stderr.puts "#{e.class}: #{e.message}\n#{(e.backtrace || []).join("\n")}"
      writer.write("#{e.class}: #{e.message}".gsub(/\r?\n/, ' | ')[0, 2000])
      writer.close
      exit! 1
    end
  end
  writer.close
  deadline = Time.now + timeout
  status = nil
  loop do
    _, status = Process.waitpid2(pid, Process::WNOHANG)
    break if status
    if Time.now > deadline
      Process.kill('KILL', pid)
      Process.waitpid(pid)
      break
    end
    sleep 0.02
  end
  error = reader.read
  reader.close
  if status.nil?
    report(name, "timed out after #{timeout}s")
  elsif status.success?
    report(name, nil)
  else
    report(name, error.empty? ? "exited with #{status.exitstatus}" : error)
  end
end

def report(name, error)
  if error
    $failed << name
    puts "FAIL #{name}: #{error}"
  else
    puts "ok #{name}"
  end
end

def finish
  exit!($failed.empty? ? 0 : 1)
end
