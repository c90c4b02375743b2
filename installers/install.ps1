# Island installer for Windows (the setup guide's native Windows install):
#
#   irm https://archipelag.io/install.ps1 | iex
#
# Downloads island-windows-x86_64.exe with its .sha256 and .sig files, checks the checksum and
# the signature (ECDSA P-256, the release key below; on any mismatch it stops and installs
# nothing), puts it in %USERPROFILE%\.island\bin\island.exe, creates the default config if there
# is none (an existing one is never touched), adds the bin folder to the user PATH, and
# suggests WSL when it is there. ISLAND_RELEASES_URL overrides where the files come from.
# Works in Windows PowerShell 5.1 and PowerShell 7.
$ErrorActionPreference = "Stop"

$ReleasesUrl = if ($env:ISLAND_RELEASES_URL) { $env:ISLAND_RELEASES_URL } else {
    "https://github.com/archipelag-io/node-agent/releases/latest/download" }
$IslandDir = if ($env:ISLAND_HOME) { $env:ISLAND_HOME } else { Join-Path $env:USERPROFILE ".island" }
$BinDir = Join-Path $IslandDir "bin"
# The same key as installers/release-key.pem and install.sh.
$ReleaseKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEgpSoz3HSgmOJzNJW/DtbXiztFqs7kUjxhIii+1wtTVxYFtIadX188JL7fInmaZAF73bNHqW2oATKmh/HVgdX4g=="

function Fail($message) {
    Write-Host "error: $message" -ForegroundColor Red
    exit 1
}

# The uncompressed point (X, Y) of a P-256 SubjectPublicKeyInfo: its last 64 bytes.
function Get-Point([byte[]]$spki) {
    if ($spki.Length -ne 91 -or $spki[26] -ne 4) { Fail "the release key is not an ECDSA P-256 key" }
    return $spki[27..90]
}

# An ASN.1 DER ECDSA signature (as openssl writes it) as r || s, 32 bytes each.
function ConvertFrom-DerSignature([byte[]]$der) {
    $out = New-Object byte[] 64
    $i = 2
    if ($der[1] -band 0x80) { $i += ($der[1] -band 0x7f) }
    foreach ($half in 0, 1) {
        if ($der[$i] -ne 2) { Fail "the signature file is not an ECDSA signature" }
        $len = $der[$i + 1]
        $int = $der[($i + 2)..($i + 1 + $len)]
        while ($int.Length -gt 32 -and $int[0] -eq 0) { $int = $int[1..($int.Length - 1)] }
        [Array]::Copy([byte[]]$int, 0, $out, $half * 32 + (32 - $int.Length), $int.Length)
        $i += 2 + $len
    }
    return $out
}

function Test-Signature([string]$file, [string]$sigFile) {
    $point = Get-Point ([Convert]::FromBase64String($ReleaseKey))
    # BCRYPT_ECCPUBLIC_BLOB: "ECS1", key length 32, then X and Y.
    $blob = [byte[]](0x45, 0x43, 0x53, 0x31, 0x20, 0, 0, 0) + $point
    $key = [System.Security.Cryptography.CngKey]::Import($blob, [System.Security.Cryptography.CngKeyBlobFormat]::EccPublicBlob)
    $ecdsa = New-Object System.Security.Cryptography.ECDsaCng($key)
    $ecdsa.HashAlgorithm = [System.Security.Cryptography.CngAlgorithm]::Sha256
    $signature = ConvertFrom-DerSignature ([IO.File]::ReadAllBytes($sigFile))
    return $ecdsa.VerifyData([IO.File]::ReadAllBytes($file), $signature)
}

if (-not [Environment]::Is64BitOperatingSystem -or $env:PROCESSOR_ARCHITECTURE -eq "ARM64") {
    Fail "no Island binary for this system ($env:PROCESSOR_ARCHITECTURE); use WSL or build from source"
}
$Asset = "island-windows-x86_64.exe"
$Tmp = Join-Path ([IO.Path]::GetTempPath()) ("island-" + [Guid]::NewGuid())
New-Item -ItemType Directory -Path $Tmp | Out-Null
try {
    Write-Host "Downloading $Asset from $ReleasesUrl"
    foreach ($f in $Asset, "$Asset.sha256", "$Asset.sig") {
        try { Invoke-WebRequest -UseBasicParsing -Uri "$ReleasesUrl/$f" -OutFile (Join-Path $Tmp $f) }
        catch { Fail "cannot download $ReleasesUrl/$f ($($_.Exception.Message))" }
    }
    $exe = Join-Path $Tmp $Asset
    $expected = ((Get-Content (Join-Path $Tmp "$Asset.sha256") -Raw).Trim() -split "\s+")[0].ToLower()
    $actual = (Get-FileHash -Algorithm SHA256 $exe).Hash.ToLower()
    if ($expected -ne $actual) {
        Fail "the checksum of $Asset does not match $Asset.sha256 (expected $expected, got $actual): the download is damaged or was tampered with; nothing was installed"
    }
    if (-not (Test-Signature $exe (Join-Path $Tmp "$Asset.sig"))) {
        Fail "the signature of $Asset is not the release key's: the download was not made by the Island release; nothing was installed"
    }
    New-Item -ItemType Directory -Force -Path $BinDir | Out-Null
    $target = Join-Path $BinDir "island.exe"
    Move-Item -Force $exe $target
    Write-Host "Installed $(& $target --version) to $target"
    $config = Join-Path $IslandDir "config.toml"
    if (Test-Path $config) {
        Write-Host "Kept your configuration at $config"
    } else {
        $env:ISLAND_HOME = $IslandDir
        & $target config init | Out-Null
        Write-Host "Created a default configuration at $config"
    }
    $path = [Environment]::GetEnvironmentVariable("Path", "User")
    if (($path -split ";") -notcontains $BinDir) {
        [Environment]::SetEnvironmentVariable("Path", "$path;$BinDir", "User")
        Write-Host "Added $BinDir to your user PATH"
    }
    if (Get-Command wsl.exe -ErrorAction SilentlyContinue) {
        Write-Host ""
        Write-Host "WSL is available: Island runs best inside it (Docker and services work as on Linux):"
        Write-Host "  curl -fsSL https://archipelag.io/install.sh | sh   (in your WSL terminal)"
    }
    Write-Host ""
    Write-Host "Done. Open a new PowerShell window, then start Island with:"
    Write-Host "  island --agent --config `"$config`""
    Write-Host "or keep it running at logon: island service install"
} finally {
    Remove-Item -Recurse -Force $Tmp -ErrorAction SilentlyContinue
}
